"""`options-helper gaps --dagster` gives the Dagster partition ranges of the same plan."""

from __future__ import annotations

import json

import ledger
from frontends.cli.app import main


def test_gaps_dagster_adds_partition_ranges_per_asset(tmp_path, capsys):
    db = tmp_path / "l.duckdb"
    ledger.open(db)
    code = main(["--duckdb-path", str(db), "gaps", "--start", "2026-11-23", "--end", "2026-11-25",
                 "--assets", "candles_daily", "--symbols", "AAPL,MSFT", "--dagster", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    (rng,) = [r for r in doc["dagster_ranges"] if r["asset_key"] == "candles_daily"]
    assert rng["partition_range"] == "2026-11-23...2026-11-25" and rng["sessions"] == 3
    assert rng["command"].startswith("dagster job backfill -m frontends.dagster.defs")
