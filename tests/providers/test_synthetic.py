"""The synthetic market as a specification: determinism, no-arbitrage quotes, evolving open interest."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.calendar import TradingCalendar
from ledger.errors import NotASessionError, UsageError
from stages.occ import parse_occ
from stages.providers import (
    OPTION_BARS_SCHEMA,
    OPTION_CHAIN_SCHEMA,
    OPTION_CONTRACTS_SCHEMA,
    STOCK_BARS_SCHEMA,
    MarketDataProvider,
)
from stages.providers.synthetic import SyntheticProvider

CAL = TradingCalendar.xnys()
SESSIONS = CAL.sessions_in_range(dt.date(2000, 1, 3), dt.date(2027, 6, 30))
RATE = 0.04
SYMBOLS = ["AAPL", "SPY", "BRK.B", "TSLA", "F", "XYZ", "QQQ", "KO"]

PROPS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sessions = st.sampled_from(SESSIONS)
symbols = st.sampled_from(SYMBOLS) | st.from_regex(r"[A-Z]{1,4}", fullmatch=True)
seeds = st.integers(0, 2**31)


def _clear_caches() -> None:
    from stages.providers import synthetic_listings, synthetic_prices

    synthetic_prices.price_path.cache_clear()
    synthetic_prices.symbol_params.cache_clear()
    synthetic_listings.expiries_open.cache_clear()
    synthetic_listings.expiry_for_friday.cache_clear()


def test_it_is_a_market_data_provider_that_can_backfill_everything():
    p = SyntheticProvider()
    assert isinstance(p, MarketDataProvider)
    assert p.is_synthetic and p.name == "synthetic"
    assert all(p.capabilities.can_backfill(d) for d in ("stock_bars", "option_contracts", "option_chain", "option_bars"))


# -- determinism ------------------------------------------------------------------------------
@PROPS
@given(seed=seeds, picks=st.lists(symbols, min_size=1, max_size=3), start=st.integers(0, len(SESSIONS) - 30),
       length=st.integers(1, 25))
def test_a_range_request_equals_the_per_session_requests(seed, picks, start, length):
    p = SyntheticProvider(seed=seed)
    days = SESSIONS[start : start + length]
    whole = p.stock_bars(picks, days[0], days[-1])
    assert whole.schema.equals(STOCK_BARS_SCHEMA)
    parts = pa.concat_tables([p.stock_bars(picks, d, d) for d in days]).sort_by([("symbol", "ascending"),
                                                                                ("date", "ascending")])
    assert whole.equals(parts)
    assert whole.num_rows == len(days) * len(set(picks))


@PROPS
@given(seed=seeds, symbol=symbols, a=sessions, b=sessions)
def test_answers_do_not_depend_on_the_order_of_requests(seed, symbol, a, b):
    _clear_caches()
    p = SyntheticProvider(seed=seed)
    first_a, first_b = p.option_chain(symbol, a).table, p.option_chain(symbol, b).table
    _clear_caches()
    q = SyntheticProvider(seed=seed)
    second_b, second_a = q.option_chain(symbol, b).table, q.option_chain(symbol, a).table
    assert first_a.equals(second_a) and first_b.equals(second_b)


def test_the_same_numbers_on_any_machine():
    """Golden values: a change here means the synthetic market changed (bump code versions)."""
    p = SyntheticProvider(seed=7)
    bars = p.stock_bars(["AAPL", "BRK.B"], dt.date(2025, 6, 2), dt.date(2025, 6, 3)).to_pylist()
    assert [(b["symbol"], b["date"].isoformat(), b["close"]) for b in bars] == GOLDEN_CLOSES
    chain = p.option_chain("SPY", dt.date(2025, 6, 2)).table
    assert (chain.num_rows, int(np.sum(chain.column("open_interest").to_numpy()))) == GOLDEN_CHAIN


GOLDEN_CLOSES = [("AAPL", "2025-06-02", 268.21), ("AAPL", "2025-06-03", 263.81),
                 ("BRK.B", "2025-06-02", 19.09), ("BRK.B", "2025-06-03", 19.6)]
GOLDEN_CHAIN = (1788, 26338874)


def test_the_seed_changes_the_market():
    d = dt.date(2025, 6, 2)
    a = SyntheticProvider(seed=1).stock_bars(["AAPL"], d, d).column("close")[0].as_py()
    b = SyntheticProvider(seed=2).stock_bars(["AAPL"], d, d).column("close")[0].as_py()
    assert a != b


# -- only sessions, tickers -------------------------------------------------------------------
@PROPS
@given(start=st.dates(dt.date(2000, 1, 1), dt.date(2027, 6, 1)), days=st.integers(0, 20))
def test_only_sessions_are_produced(start, days):
    end = start + dt.timedelta(days=days)
    table = SyntheticProvider().stock_bars(["AAPL"], start, end)
    produced = table.column("date").to_pylist()
    assert produced == CAL.sessions_in_range(start, end)


def test_a_chain_on_a_weekend_is_not_a_session():
    with pytest.raises(NotASessionError):
        SyntheticProvider().option_chain("AAPL", dt.date(2025, 6, 1))


@pytest.mark.parametrize("bad", ["aapl", "AA PL", "", "TOOLONGX", "$SPY", "BRK..B"])
def test_malformed_tickers_are_rejected_like_the_api_does(bad):
    p = SyntheticProvider()
    with pytest.raises(UsageError, match="invalid symbol"):
        p.stock_bars([bad], dt.date(2025, 6, 2), dt.date(2025, 6, 2))
    with pytest.raises(UsageError):
        p.option_chain(bad, dt.date(2025, 6, 2))


def test_brk_b_works_and_its_contracts_use_the_occ_root():
    snap = SyntheticProvider().option_chain("BRK.B", dt.date(2025, 6, 2))
    symbols = snap.table.column("contract_symbol").to_pylist()
    assert all(s.startswith("BRKB") for s in symbols)
    assert set(snap.table.column("underlying").to_pylist()) == {"BRK.B"}


# -- the chain --------------------------------------------------------------------------------
def _frame(table: pa.Table) -> dict[str, np.ndarray]:
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


@PROPS
@given(seed=seeds, symbol=symbols, day=sessions)
@example(seed=211, symbol="XYZ", day=dt.date(2006, 9, 18))  # a sub-dollar underlying ($0.86): 94 contracts
def test_quotes_are_ordered_monotone_and_free_of_arbitrage(seed, symbol, day):
    snap = SyntheticProvider(seed=seed, risk_free_rate=RATE).option_chain(symbol, day)
    t = snap.table
    # a full chain: even a sub-dollar underlying lists dozens of contracts (strikes x expiries x types)
    assert t.schema.equals(OPTION_CHAIN_SCHEMA) and t.num_rows >= 40
    f = _frame(t)
    assert np.all(f["bid"] >= 0) and np.all(f["bid"] <= f["ask"])
    assert np.all(f["open_interest"] >= 0) and np.all(f["volume"] >= 0)
    assert np.all(f["implied_volatility"] > 0)
    assert snap.spot > 0 and snap.quoted_at.tzinfo is not None
    expiries = f["expiry"].astype("datetime64[D]")
    calls = f["option_type"] == "call"
    for e in np.unique(expiries):
        for is_call in (True, False):
            rows = (expiries == e) & (calls == is_call)
            order = np.argsort(f["strike"][rows])
            for col in ("bid", "ask"):
                steps = np.diff(f[col][rows][order])
                assert np.all(steps <= 1e-9) if is_call else np.all(steps >= -1e-9), (col, e)
    # put-call parity within the spread, strike by strike
    keys = [(x, k) for x, k in zip(expiries.tolist(), f["strike"].tolist(), strict=True)]
    put_at = {key: i for i, key in enumerate(keys) if not calls[i]}
    for i, key in enumerate(keys):
        j = put_at.get(key)
        if not calls[i] or j is None:
            continue
        years = max((key[0] - day).days, 0) / 365.0
        years = max(years, 1.0 / (365.0 * 24.0))
        forward_value = snap.spot - key[1] * math.exp(-RATE * years)
        assert f["bid"][i] - f["ask"][j] - 1e-9 <= forward_value <= f["ask"][i] - f["bid"][j] + 1e-9


@PROPS
@given(symbol=symbols, day=sessions)
def test_every_contract_symbol_parses_to_its_row(symbol, day):
    t = SyntheticProvider().option_chain(symbol, day).table
    rows = t.slice(0, 40).to_pylist() + t.slice(max(0, t.num_rows - 40)).to_pylist()
    for row in rows:
        occ = parse_occ(row["contract_symbol"], underlying=row["underlying"])
        assert (occ.expiry, occ.option_type, occ.strike) == (row["expiry"], row["option_type"], row["strike"])
    assert t.equals(t.sort_by([("expiry", "ascending"), ("option_type", "ascending"), ("strike", "ascending"),
                               ("contract_symbol", "ascending")]))


def test_weekly_and_monthly_expiries_out_to_about_a_year():
    day = dt.date(2025, 6, 2)
    expiries = sorted(set(SyntheticProvider().option_chain("AAPL", day).table.column("expiry").to_pylist()))
    weeklies = [e for e in expiries if (e - day).days <= 42]
    assert len(weeklies) >= 5
    assert 330 <= (expiries[-1] - day).days <= 380
    assert all(e >= day for e in expiries)
    assert dt.date(2025, 7, 3) in expiries  # Friday July 4th is a holiday: the weekly moves to Thursday


def test_the_smile_has_a_put_skew_and_a_term_structure():
    t = SyntheticProvider().option_chain("SPY", dt.date(2025, 6, 2))
    f = _frame(t.table)
    spot = t.spot
    monthly = f["expiry"].astype("datetime64[D]") == np.datetime64("2025-09-19")
    iv = dict(zip(f["strike"][monthly].tolist(), f["implied_volatility"][monthly].tolist(), strict=False))
    low = min(iv, key=lambda k: abs(k - 0.9 * spot))
    atm = min(iv, key=lambda k: abs(k - spot))
    high = min(iv, key=lambda k: abs(k - 1.1 * spot))
    assert iv[low] > iv[atm] > iv[high] * 0.98


# -- open interest and volume -----------------------------------------------------------------
@PROPS
@given(seed=seeds, symbol=symbols, index=st.integers(1, len(SESSIONS) - 1))
def test_open_interest_evolves_with_volume_from_listing_to_expiry(seed, symbol, index):
    p = SyntheticProvider(seed=seed)
    before, day = SESSIONS[index - 1], SESSIONS[index]
    prev = {r["contract_symbol"]: r for r in p.option_chain(symbol, before).table.to_pylist()}
    today = {r["contract_symbol"]: r for r in p.option_chain(symbol, day).table.to_pylist()}
    for sym, row in today.items():
        old = prev.get(sym, {"open_interest": 0})["open_interest"]
        # OI(t) = OI(t-1) + opened - closed, and opened + closed <= volume
        assert abs(row["open_interest"] - old) <= row["volume"], sym
    for sym, row in prev.items():
        if sym not in today:  # only expiry removes a contract
            assert row["expiry"] < day


def test_the_flow_identity_holds_inside_the_model():
    from stages.providers.synthetic import _chain_contracts
    from stages.providers.synthetic_chain import quote
    from stages.providers.synthetic_prices import price_path, session_index

    index = session_index(dt.date(2025, 6, 2))
    c = _chain_contracts(7, "AAPL", index, None)
    q = quote(price_path(7, "AAPL"), 7, c, np.full(len(c.strike_milli), index), RATE)
    assert np.array_equal(q.open_interest - q.open_interest_prev, q.opened - q.closed)
    assert np.all(q.closed <= q.open_interest_prev)
    assert np.all(q.opened + q.closed <= q.volume)
    assert np.all((q.open_interest_prev == 0) | (index - 1 >= c.listing_index))


def test_contracts_agree_with_the_chain():
    p = SyntheticProvider()
    day = dt.date(2025, 6, 2)
    contracts = p.option_contracts("AAPL", day)
    chain = p.option_chain("AAPL", day).table
    assert contracts.schema.equals(OPTION_CONTRACTS_SCHEMA)
    assert contracts.column("contract_symbol").equals(chain.column("contract_symbol"))
    assert contracts.column("open_interest").equals(chain.column("open_interest"))
    assert set(contracts.column("open_interest_date").to_pylist()) == {day}
    limited = p.option_contracts("AAPL", day, expiry_lte=dt.date(2025, 6, 30))
    assert 0 < limited.num_rows < contracts.num_rows
    assert max(limited.column("expiry").to_pylist()) <= dt.date(2025, 6, 30)


# -- option bars ------------------------------------------------------------------------------
def test_option_bars_match_the_chain_on_each_session():
    p = SyntheticProvider()
    day = dt.date(2025, 6, 2)
    chain = p.option_chain("AAPL", day).table.to_pylist()
    traded = [r for r in chain if r["volume"] > 0][::50]
    start = CAL.sessions_in_range(dt.date(2025, 5, 1), day)[0]
    bars = p.option_bars([r["contract_symbol"] for r in traded] + ["AAPL250606C09999000"], start, day)
    assert bars.schema.equals(OPTION_BARS_SCHEMA)
    on_day = {r["contract_symbol"]: r for r in bars.to_pylist() if r["date"] == day}
    for row in traded:
        bar = on_day[row["contract_symbol"]]
        assert (bar["close"], bar["volume"]) == (row["last"], row["volume"])
        assert bar["low"] <= min(bar["open"], bar["close"]) and bar["high"] >= max(bar["open"], bar["close"])
    dates = bars.column("date").to_pylist()
    assert all(CAL.is_session(d) and start <= d <= day for d in dates)
    assert "AAPL250606C09999000" not in set(bars.column("contract_symbol").to_pylist())  # never listed


@PROPS
@given(seed=seeds, start=st.integers(0, len(SESSIONS) - 40), length=st.integers(1, 30))
def test_option_bar_ranges_equal_their_sessions(seed, start, length):
    p = SyntheticProvider(seed=seed)
    days = SESSIONS[start : start + length]
    chain = p.option_chain("QQQ", days[-1]).table
    picks = chain.column("contract_symbol").to_pylist()[:: max(1, chain.num_rows // 5)]
    whole = p.option_bars(picks, days[0], days[-1])
    parts = pa.concat_tables([p.option_bars(picks, d, d) for d in days]).sort_by(
        [("contract_symbol", "ascending"), ("date", "ascending")])
    assert whole.equals(parts)
    assert np.all(whole.column("volume").to_numpy() > 0)


# -- prices -----------------------------------------------------------------------------------
def test_prices_are_a_plausible_random_walk_with_gaps():
    bars = SyntheticProvider().stock_bars(["TSLA", "KO"], dt.date(2015, 1, 1), dt.date(2024, 12, 31))
    for symbol in ("TSLA", "KO"):
        rows = bars.filter(pa.compute.equal(bars.column("symbol"), symbol))
        close = rows.column("close").to_numpy()
        open_ = rows.column("open").to_numpy()
        returns = np.diff(np.log(close))
        vol = returns.std() * math.sqrt(252)
        assert 0.08 < vol < 1.2, (symbol, vol)
        gaps = np.abs(np.log(open_[1:] / close[:-1])) > 4 * returns.std()
        assert gaps.sum() >= 3  # occasional overnight gaps
        low, high = rows.column("low").to_numpy(), rows.column("high").to_numpy()
        assert np.all(low <= np.minimum(open_, close)) and np.all(high >= np.maximum(open_, close))
        assert np.all(rows.column("volume").to_numpy() > 0)
