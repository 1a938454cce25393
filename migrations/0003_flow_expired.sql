-- Flow: expired contracts are not flow (docs/flow.md). What rolled off is kept apart from the
-- change in open interest, and a pair of snapshots may span more than one session after a
-- missed one. Additive only: existing rows read as no expiry and a one-session pair.
ALTER TABLE options_flow ADD COLUMN n_expired BIGINT;
ALTER TABLE options_flow ADD COLUMN expired_oi DOUBLE;
ALTER TABLE options_flow ADD COLUMN expired_notional DOUBLE;
ALTER TABLE options_flow ADD COLUMN gap_sessions INTEGER;
