"""`make demo` ends clean: a short run of the demo (two sessions, one symbol, the same code path as
the 20-session demo) leaves `options-helper gaps` over its window with nothing to fix, because the
demo takes the snapshot of the session before its first (the first session's flow needs it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ledger
from frontends.cli import demo
from ledger.config import Settings
from stages import datastore
from stages.planning import plan

FIRST, LAST = dt.date(2026, 11, 19), dt.date(2026, 11, 20)


def test_a_short_demo_leaves_no_gaps(tmp_path: Path) -> None:
    db, root = tmp_path / "demo.duckdb", tmp_path / "data"
    code = demo.main(["--sessions", "2", "--as-of", LAST.isoformat(), "--symbols", "SPY",
                      "--duckdb-path", str(db), "--data-root", str(root)])
    assert code == 0
    settings = Settings(duckdb_path=db, data_root=root, watchlists={"default": ("SPY",)})
    p = plan(settings, start=FIRST, end=LAST)
    assert p.cells_missing == 0 and p.cells_unrecoverable == 0 and not p.ranges, p.to_dict()["ranges"]
    # the first session's flow is real flow against the session before, not a skip
    with ledger.open(db).reader() as con:
        rows = datastore.flow(con, ["SPY"], FIRST, group_by="total")
    assert rows.num_rows == 2 and set(rows.column("from_date").to_pylist()) == {dt.date(2026, 11, 18)}
