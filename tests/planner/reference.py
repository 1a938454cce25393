"""A straightforward Python implementation of the planner's rules (docs/gaps.md), cell by cell.

It is the oracle of the property tests and the baseline of ``tests/bench/bench_planner.py``:
read the three projections into dicts, walk the assets in graph order and the cells one by one.
Returns ``{(asset_key, session_index, scope_key): reason}`` over the analysed sessions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from ledger.planner import ALL_SCOPE, PlannerAsset, ancestors, lookback_assets

WILL_CHANGE, ABSENT_FIXABLE, ABSENT_BLOCKED = 1, 2, 4


def reference_plan(con: duckdb.DuckDBPyConnection, *, graph: Sequence[PlannerAsset], symbols: Sequence[str],
                   days: Sequence[dt.date], has_lookback: bool, code_versions: Mapping[str, str | None],
                   cutoffs: Mapping[str, dt.date], assets: Sequence[str] | None = None) -> dict[tuple[str, int, str], str]:
    by_key = {a.key: a for a in graph}
    report = [a.key for a in graph] if assets is None else list(assets)
    analysed = [by_key[k] for k in ancestors(graph, report)]
    lb = set(lookback_assets(analysed))
    pks = [d.isoformat() for d in days]
    pk_index = {pk: i for i, pk in enumerate(pks)}
    syms = sorted(set(symbols))

    rows: dict[tuple[str, int, str], tuple[Any, ...]] = {}
    for r in con.execute("SELECT asset_key, partition_key, scope_key, status, materialized_seq, last_seq, "
                         "code_version, materialized_run_id FROM meta.partition_status").fetchall():
        i = pk_index.get(r[1])
        if i is not None:
            rows[(r[0], i, r[2])] = r[3:]
    bad: dict[tuple[str, str, str], tuple[int, str]] = {}
    for job, pk, status, seq, scopes in con.execute(
            "SELECT job_name, partition_key, status, coalesce(first_seq, last_seq), scope_keys FROM meta.ingestion_runs "
            "WHERE status IN ('failed', 'abandoned')").fetchall():
        for s in (scopes or ["*"]):
            key = (job, pk, s)
            if key not in bad or bad[key][0] < seq:
                bad[key] = (seq, status)
    latest_checks: dict[tuple[Any, ...], tuple[int, str, Any, Any]] = {}
    for a, pk, scope, name, mseq, run_id, status, seq in con.execute(
            "SELECT asset_key, partition_key, scope_key, check_name, materialization_seq, run_id, status, seq "
            "FROM meta.asset_checks WHERE severity = 'error'").fetchall():
        key = (a, pk, scope, name, mseq if mseq is not None else -1, run_id)
        if key not in latest_checks or latest_checks[key][0] < seq:
            latest_checks[key] = (seq, status, mseq, (a, pk, scope, run_id))
    failed_mseqs = {v[2] for v in latest_checks.values() if v[1] == "fail" and v[2] is not None}
    failed_runs = {v[3] for v in latest_checks.values() if v[1] == "fail" and v[2] is None}

    first_window = 1 if has_lookback and lb else 0
    state: dict[tuple[str, int, str], tuple[int, int | None]] = {}  # (bits, vseq)
    out: dict[tuple[str, int, str], str] = {}
    for a in analysed:
        cutoff = cutoffs.get(a.key)
        scopes = syms if a.per_symbol else [ALL_SCOPE]
        first = 0 if a.key in lb else first_window
        for i in range(first, len(days)):
            for k in scopes:
                row = rows.get((a.key, i, k))
                status = row[0] if row else None
                present = status in ("materialized", "skipped")
                vseq = row[1] if status == "materialized" else (row[2] if status == "skipped" else None)
                up_bits, up_vseq = 0, None
                for up, lag in a.upstream:
                    ua = by_key[up]
                    j = i - lag
                    ukeys = [k] if ua.per_symbol and a.per_symbol else (syms if ua.per_symbol else [ALL_SCOPE])
                    for uk in ukeys:
                        st = state.get((up, j, uk))
                        if st is None:
                            continue
                        bits = st[0]
                        if lag and a.lag_reach > 1 and bits & ABSENT_BLOCKED and any(
                                (rows.get((up, j - m, uk)) or (None,))[0] == "materialized"
                                for m in range(1, a.lag_reach) if j - m >= 0):
                            bits &= ~ABSENT_BLOCKED  # an earlier input within the reach will do
                        up_bits |= bits
                        if st[1] is not None and (up_vseq is None or st[1] > up_vseq):
                            up_vseq = st[1]
                if status == "failed":
                    base = "failed"
                elif status is None:
                    run = None
                    if a.per_symbol:
                        hit = bad.get((a.job, pks[i], k)) or bad.get((a.job, pks[i], "*"))
                        run = hit[1] if hit else None
                    else:
                        hits = [v[1] for (job, pk, _), v in bad.items() if job == a.job and pk == pks[i]]
                        run = "failed" if "failed" in hits else (hits[0] if hits else None)
                    if run in ("failed", "abandoned"):
                        base = run
                    elif up_bits & ABSENT_FIXABLE:
                        base = "upstream_missing"
                    else:
                        base = "missing"
                else:
                    chk = status == "materialized" and (
                        row[1] in failed_mseqs
                        or any((a.key, pks[i], sc, row[4]) in failed_runs for sc in {k, ALL_SCOPE}))
                    version = code_versions.get(a.key)
                    code_stale = status == "materialized" and row[3] is not None and version is not None and row[3] != version
                    if chk:
                        base = "check_failed"
                    elif status == "skipped" and up_bits & ABSENT_FIXABLE:
                        base = "upstream_missing"
                    elif code_stale or up_bits & (WILL_CHANGE | ABSENT_FIXABLE) or (
                            up_vseq is not None and vseq is not None and up_vseq > vseq):
                        base = "stale"
                    else:
                        base = None
                blocked = base is not None and (
                    (cutoff is not None and days[i] < cutoff) or (not present and up_bits & ABSENT_BLOCKED))
                if base is None:
                    bits = 0
                elif blocked:
                    bits = 0 if present else ABSENT_BLOCKED
                else:
                    bits = WILL_CHANGE if present else ABSENT_FIXABLE
                state[(a.key, i, k)] = (bits, vseq)
                if base is not None and a.key in report:
                    out[(a.key, i, k)] = "unrecoverable" if blocked else base
    return out
