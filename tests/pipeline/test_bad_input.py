"""Bad input gives a clear error and writes nothing for the partitions it concerns; other
symbols are unaffected."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

import ledger
import stages
from ledger.config import Settings
from ledger.errors import ConfigError, NotASessionError, UsageError
from tests.pipeline.conftest import DAY2, NOW, FaultyProvider


def rows(s: Settings, sql: str, params: list[Any] | None = None) -> int:
    with ledger.open(s.duckdb_path).reader() as con:
        return int(con.execute(sql, params or []).fetchone()[0])


def test_a_date_that_is_not_a_session_names_the_nearest_sessions(settings: Settings) -> None:
    with pytest.raises(NotASessionError, match=r"2026-11-20 and 2026-11-23"):
        stages.run_job("ingest_candles", as_of=dt.date(2026, 11, 21), settings=settings, now=NOW)
    with pytest.raises(NotASessionError, match=r"2026-11-25 and 2026-11-27"):  # Thanksgiving
        stages.run_daily(as_of=dt.date(2026, 11, 26), settings=settings, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert not settings.duckdb_path.exists(), "a rejected date must not even create the database"


def test_a_session_that_has_not_closed_is_refused(settings: Settings) -> None:
    with pytest.raises(UsageError, match="has not closed yet; the latest completed session is 2026-11-23"):
        stages.run_job("ingest_candles", as_of=dt.date(2026, 11, 24), settings=settings, now=NOW)


def test_malformed_symbols_unknown_jobs_and_watchlists_are_usage_errors(settings: Settings) -> None:
    with pytest.raises(UsageError, match="invalid symbol"):
        stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY", "NOT A TICKER"], settings=settings, now=NOW)
    with pytest.raises(UsageError, match="unknown job"):
        stages.run_job("ingest_everything", as_of=DAY2, settings=settings, now=NOW)
    with pytest.raises(ConfigError, match="unknown watchlist"):
        stages.resolve_symbols(None, settings, watchlist="nope")
    assert stages.resolve_symbols("spy, aapl,SPY", settings) == ("SPY", "AAPL")
    assert stages.resolve_symbols(None, settings, watchlist="one") == ("SPY",)


def _empty_for(symbol: str) -> Any:
    def transform(table: pa.Table, asked: str) -> pa.Table:
        return table.slice(0, 0) if asked == symbol else table

    return transform


def test_empty_candles_for_one_symbol(settings: Settings, synthetic: Any) -> None:
    provider = FaultyProvider(synthetic, transform={"stock_bars": _empty_for("IWM")})
    result = stages.run_job("ingest_candles", as_of=DAY2, settings=settings, provider=provider, now=NOW)
    assert result.ok
    iwm = result.outcome("IWM")
    assert iwm.status == "failed" and "no candle for IWM on 2026-11-20" in iwm.error
    assert rows(settings, "SELECT count(*) FROM candles_daily WHERE symbol = 'IWM'") == 0
    assert rows(settings, "SELECT count(*) FROM candles_daily WHERE symbol = 'SPY'") == 90


def test_malformed_candles_for_one_symbol(settings: Settings, synthetic: Any) -> None:
    provider = FaultyProvider(synthetic, transform={"stock_bars": lambda t, s: t.drop_columns(["close"]) if s == "IWM" else t})
    result = stages.run_job("ingest_candles", as_of=DAY2, settings=settings, provider=provider, now=NOW)
    iwm = result.outcome("IWM")
    assert iwm.status == "failed" and "lack column(s) close" in iwm.error
    assert result.outcome("SPY").status == "success"
    assert rows(settings, "SELECT count(*) FROM candles_daily WHERE symbol = 'IWM'") == 0


def test_duplicate_candles_are_rejected_as_malformed(settings: Settings, synthetic: Any) -> None:
    provider = FaultyProvider(synthetic, transform={"stock_bars": lambda t, s: pa.concat_tables([t, t])})
    result = stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY"], settings=settings, provider=provider, now=NOW)
    assert result.status == "failed" and "duplicate sessions" in result.outcome("SPY").error


class _Chain:
    def __init__(self, snap: Any, table: pa.Table) -> None:
        self.underlying, self.as_of, self.spot, self.quoted_at = snap.underlying, snap.as_of, snap.spot, snap.quoted_at
        self.table = table


def test_empty_and_malformed_chains(settings: Settings, synthetic: Any) -> None:
    def transform(snap: Any, symbol: str) -> Any:
        if symbol == "QQQ":
            return _Chain(snap, snap.table.slice(0, 0))
        if symbol == "IWM":
            return _Chain(snap, snap.table.drop_columns(["option_type"]))
        return snap

    provider = FaultyProvider(synthetic, transform={"option_chain": transform})
    result = stages.run_job("snapshot_options", as_of=DAY2, symbols=["SPY", "QQQ", "IWM"], settings=settings,
                            provider=provider, now=NOW)
    assert result.ok
    assert "empty option chain for QQQ" in result.outcome("QQQ").error
    assert "missing column(s) option_type" in result.outcome("IWM").error
    assert result.outcome("SPY").status == "success"
    assert rows(settings, "SELECT count(*) FROM options_snapshot_files") == 1
    lake = settings.data_root / "lake" / "options_snapshots"
    assert sorted(p.name for p in lake.iterdir()) == ["symbol=SPY"]
    assert not list(settings.data_root.rglob("*.tmp"))


def test_options_bars_reject_bars_that_were_not_asked_for(settings: Settings, synthetic: Any) -> None:
    def stray(table: pa.Table, _: str) -> pa.Table:
        other = synthetic.option_bars(synthetic.option_contracts("QQQ", DAY2)["contract_symbol"].to_pylist()[:3], DAY2, DAY2)
        return pa.concat_tables([table, other])

    stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY"], settings=settings, provider=synthetic, now=NOW)
    provider = FaultyProvider(synthetic, transform={"option_bars": stray})
    result = stages.run_job("ingest_options_bars", as_of=DAY2, symbols=["SPY"], settings=settings, provider=provider, now=NOW)
    assert result.status == "failed" and "not asked for" in result.outcome("SPY").error
    assert rows(settings, "SELECT count(*) FROM options_bars") == 0
    assert rows(settings, "SELECT count(*) FROM option_contracts") == 0


def test_options_bars_respect_the_horizon_and_band(settings: Settings, synthetic: Any) -> None:
    stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY"], settings=settings, provider=synthetic, now=NOW)
    result = stages.run_job("ingest_options_bars", as_of=DAY2, symbols=["SPY"], settings=settings,
                            provider=synthetic, now=NOW)
    assert result.ok
    with ledger.open(settings.duckdb_path).reader() as con:
        spot = con.execute("SELECT close FROM candles_daily WHERE symbol = 'SPY' AND date = ?", [DAY2]).fetchone()[0]
        lo, hi, n = con.execute(
            "SELECT min(c.strike), max(c.strike), count(*) FROM options_bars b JOIN option_contracts c "
            "USING (contract_symbol) WHERE b.date = ?", [DAY2]).fetchone()
        last_expiry = con.execute("SELECT max(expiry) FROM option_contracts").fetchone()[0]
    assert n > 0 and n == result.outcome("SPY").rows
    assert spot * (1 - settings.moneyness_band) <= lo and hi <= spot * (1 + settings.moneyness_band)
    assert last_expiry <= DAY2 + dt.timedelta(days=settings.expiry_horizon_days)
