"""``datastore.write_all`` replaces many partitions with one DELETE and one INSERT per table and
leaves exactly what ``write`` one partition at a time leaves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

import ledger
from ledger.errors import StageError
from stages import datastore

D1, D2, D3 = dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)


def candles(symbol: str, days: list[dt.date], close: float) -> pa.Table:
    n = len(days)
    return pa.table({"symbol": [symbol] * n, "date": pa.array(days, pa.date32()), "ts": [None] * n,
                     "open": [close] * n, "high": [close] * n, "low": [close] * n, "close": [close] * n,
                     "volume": [1] * n, "vwap": [close] * n, "trade_count": [1] * n})


def stored(path: Path, writes: list[datastore.TableWrite], *, batched: bool) -> list[dict]:
    import duckdb

    ledger.open(path)  # creates and migrates the file
    seed = [datastore.TableWrite(table="candles_daily", rows=candles(s, [D1, D2, D3], 1.0),
                                 partition={"symbol": s, "date": [D1, D2, D3]}) for s in ("SPY", "IWM", "QQQ")]
    with duckdb.connect(str(path)) as con:
        datastore.write_all(con, seed, "seed")
        if batched:
            datastore.write_all(con, writes, "run")
        else:
            for w in writes:
                datastore.write(con, w, "run")
        return datastore.table_rows(con, "candles_daily", exclude=()).to_pylist()


@pytest.mark.parametrize("overlapping", [False, True])
def test_write_all_equals_one_write_at_a_time(tmp_path: Path, overlapping: bool) -> None:
    writes = [
        datastore.TableWrite(table="candles_daily", rows=candles("SPY", [D2, D3], 2.0),
                             partition={"symbol": "SPY", "date": [D2, D3]}),
        datastore.TableWrite(table="candles_daily", rows=candles("IWM", [], 0.0), partition={"symbol": "IWM", "date": D3}),
        datastore.TableWrite(table="candles_daily", rows=candles("QQQ" if not overlapping else "SPY", [D3], 3.0),
                             partition={"symbol": "QQQ" if not overlapping else "SPY", "date": D3}),
    ]
    batched = stored(tmp_path / "a.duckdb", writes, batched=True)
    assert batched == stored(tmp_path / "b.duckdb", writes, batched=False)
    assert [r["close"] for r in batched if r["symbol"] == "IWM"] == [1.0, 1.0]  # D3 deleted, nothing inserted


def test_write_all_rejects_a_foreign_partition_column(tmp_path: Path) -> None:
    writes = [datastore.TableWrite(table="candles_daily", rows=candles(s, [D3], 1.0), partition={"close": 1.0, "symbol": s})
              for s in ("SPY", "IWM")]
    with pytest.raises(StageError, match="not a partition column"):
        stored(tmp_path / "c.duckdb", writes, batched=True)


@pytest.mark.parametrize("overlapping", [False, True])
def test_spooled_writes_store_the_same_rows(tmp_path: Path, overlapping: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes spooled to Parquet (every one, here: the threshold lowered to 0 bytes) store exactly
    what the same writes store from memory, batched or one at a time."""
    many = [D1 + dt.timedelta(days=i) for i in range(40)]
    writes = [
        datastore.TableWrite(table="candles_daily", rows=candles("SPY", many, 2.0), partition={"symbol": "SPY", "date": many}),
        datastore.TableWrite(table="candles_daily", rows=candles("IWM", [], 0.0), partition={"symbol": "IWM", "date": D3}),
        datastore.TableWrite(table="candles_daily", rows=candles("SPY" if overlapping else "QQQ", [D3], 3.0),
                             partition={"symbol": "SPY" if overlapping else "QQQ", "date": D3}),
    ]
    in_memory = stored(tmp_path / "a.duckdb", writes, batched=True)
    monkeypatch.setattr(datastore, "SPOOL_BYTES", 0)
    spooled = [datastore.spool(w, tmp_path / "spool", f"w{i}") for i, w in enumerate(writes)]
    assert all(w.spooled is not None and w.rows.num_rows == 0 for w in spooled)
    assert stored(tmp_path / "b.duckdb", spooled, batched=True) == in_memory
    assert stored(tmp_path / "c.duckdb", spooled, batched=False) == in_memory


def test_small_writes_stay_in_memory(tmp_path: Path) -> None:
    w = datastore.TableWrite(table="candles_daily", rows=candles("SPY", [D3], 1.0), partition={"symbol": "SPY", "date": D3})
    assert datastore.spool(w, tmp_path, "w") is w
    assert not any(tmp_path.iterdir())
