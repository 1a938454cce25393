"""Health: latest run per job, recurring failures, freshness in sessions, failed checks, abandoned runs."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from frontends.portal import queries, ui


def as_of_control(last_seq: int) -> tuple[int | None, dt.datetime | None]:
    """The time-travel control: now, an earlier moment (UTC), or an earlier seq."""
    with st.expander("Time travel: show health as of an earlier moment", expanded=False):
        mode = st.radio("As of", ["Now", "A moment (UTC)", "A seq"], horizontal=True, key="asof_mode")
        if mode == "A moment (UTC)":
            now = dt.datetime.now(dt.UTC)
            c1, c2 = st.columns(2)
            day = c1.date_input("Date", value=now.date(), key="asof_date")
            at = c2.time_input("Time (UTC)", value=dt.time(21, 0), key="asof_time", step=300)
            return None, dt.datetime.combine(day, at, tzinfo=dt.UTC)
        if mode == "A seq":
            seq = st.number_input("Seq", min_value=1, max_value=max(1, last_seq), value=max(1, last_seq),
                                  step=1, key="asof_seq")
            return int(seq), None
    return None, None


def body() -> None:
    s, state = ui.open_ledger("Health")
    st.caption("Latest run per job, recurring failures, freshness in XNYS sessions, failed checks and "
               "abandoned runs. This page never writes.")
    seq, when = as_of_control(state.last_seq)
    as_of_seq, reference = queries.resolve_as_of(s.duckdb_path, seq=seq, when=when)
    if as_of_seq is not None:
        st.info(f"As of seq {as_of_seq:,} ({ui.utc(reference)}); the ledger is now at seq {state.last_seq:,}.")
    h = ui.query("health", str(s.duckdb_path), state.last_seq, as_of_seq=as_of_seq, reference=reference,
                 close_delay_minutes=s.session_close_delay_minutes)
    m = h["metrics"]
    cols = st.columns(5)
    cols[0].metric("Jobs", m["jobs"])
    cols[1].metric("Latest run failed", m["latest_failed"])
    cols[2].metric("Behind (asset × symbol)", m["behind"])
    cols[3].metric("Failed checks (7 d)", m["failed_checks"])
    cols[4].metric("Abandoned runs (7 d)", m["abandoned"])
    st.caption(f"Latest completed session: {h['latest_completed_session']} · last seq {h['last_seq']:,}")

    links = {"run_id": ui.run_link_column("run_id"), "latest_run_id": ui.run_link_column("latest run"),
             "last_run_id": ui.run_link_column("last run")}

    st.subheader("Latest run per job")
    latest = h["latest_runs"][["job_name", "status", "triggered_by", "partition_key", "started_at", "duration_ms",
                               "error_type", "run_id"]]
    st.dataframe(ui.tinted(ui.with_run_links(latest), "status"), hide_index=True, column_config=links)

    st.subheader("Recurring failures")
    st.caption("Failed runs grouped by error fingerprint: the exception type and the message with numbers, "
               "dates, ids and paths masked.")
    groups = h["failure_groups"]
    if len(groups):
        st.dataframe(ui.with_run_links(groups, "latest_run_id"), hide_index=True, column_config=links)
    else:
        st.success("No failed runs in the last 7 days.")

    st.subheader("Freshness")
    st.caption("Sessions behind the latest completed XNYS session, per asset and symbol.")
    fresh = h["freshness"]
    if len(fresh):
        st.dataframe(ui.tinted(ui.with_run_links(fresh, "last_run_id"), "freshness"), hide_index=True, column_config=links)
    else:
        st.info("No watermarks yet: no asset has been materialized.")

    st.subheader("Failed checks")
    checks = h["failed_checks"]
    if len(checks):
        st.dataframe(ui.tinted(ui.with_run_links(checks), "severity"), hide_index=True, column_config=links)
    else:
        st.success("No failed checks in the last 7 days.")

    st.subheader("Abandoned runs")
    abandoned = h["abandoned_runs"]
    if len(abandoned):
        st.dataframe(ui.with_run_links(abandoned[["job_name", "partition_key", "triggered_by", "started_at",
                                                  "ended_at", "error_message", "run_id"]]),
                     hide_index=True, column_config=links)
    else:
        st.success("No abandoned runs in the last 7 days.")


ui.guarded(body)
