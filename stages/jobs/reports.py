"""``build_briefing`` and ``build_dashboard``: the session's report files (scope ``ALL``).

* ``data/reports/briefing/YYYY-MM-DD.md`` and ``.json``: ``stages.analytics.build_briefing`` over
  each symbol's derived row, its previous spot, its flow by strike and the failed checks the
  ledger recorded for it this session.
* ``data/reports/dashboard/YYYY-MM-DD.html``: ``stages.analytics.render_dashboard`` over the
  symbols' recent derived rows and candles, the session's flow by strike, and a ledger health
  summary of the session (this job's own runs left out).

Both are reproducible: they are stamped with the session's close (or the caller's
``generated_at``), not the wall clock, and the health summary shows each job's latest status
for the session without run ids, triggers or times. Rebuilding a report from the same data and
ledger state, or from the CLI and from Dagster, writes the same bytes.

Whether the inputs are synthetic is read from the snapshot rows' provider (their lineage), so
a briefing built from synthetic data says so whichever provider is configured now.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages import datastore
from stages.jobs import _files
from stages.jobs.base import JobContext, PartitionResult
from stages.registry import BUILD_DASHBOARD, DASHBOARD_VIEWS

if TYPE_CHECKING:
    from stages.portfolio.report import PortfolioReport

BRIEFING_DIR = "reports/briefing"
DASHBOARD_DIR = "reports/dashboard"
BRIEFING_MARKDOWN_KIND = "briefing_markdown"
BRIEFING_JSON_KIND = "briefing_json"
DASHBOARD_SESSIONS = 60
GROUP_STRIKE, GROUP_TOTAL = "strike", "total"  # stages.analytics.flow, without importing it


def _synthetic(ctx: JobContext, providers: list[str | None]) -> bool:
    known = [p for p in providers if p]
    return any(p == "synthetic" for p in known) if known else ctx.settings.provider == "synthetic"


def _by_symbol(table: pa.Table) -> Callable[[str], pa.Table]:
    """Each symbol's rows of ``table``, in their order: one stable sort and zero-copy slices, not a
    filter of the whole table per symbol (the reports cover every symbol: that was quadratic)."""
    if not table.num_rows:
        return lambda symbol: table
    table = table.take(pc.sort_indices(table, sort_keys=[("symbol", "ascending")]))  # stable
    symbols = table["symbol"].to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1]])
    ends = np.r_[starts[1:], len(symbols)]
    slices = {symbols[a]: table.slice(a, b - a) for a, b in zip(starts, ends, strict=True)}
    empty = table.slice(0, 0)
    return lambda symbol: slices.get(symbol, empty)


def _report_row(kind: str, ctx: JobContext, f: _files.StagedFile) -> dict[str, Any]:
    return {"kind": kind, "date": ctx.as_of, "path": f.relpath, "bytes": f.bytes, "sha256": f.sha256}


def _report_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table({
        "kind": [r["kind"] for r in rows], "date": pa.array([r["date"] for r in rows], pa.date32()),
        "path": [r["path"] for r in rows], "bytes": pa.array([r["bytes"] for r in rows], pa.int64()),
        "sha256": [r["sha256"] for r in rows],
    })


# -- briefing -------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class BriefingInputs:
    derived: pa.Table
    flow: pa.Table
    failed_checks: list[dict[str, Any]]
    providers: list[str | None]
    previous_closes: dict[str, float]
    portfolio: PortfolioReport | None = None  # the configured portfolio valued on the session


# -- the portfolio (stages.portfolio): valued from the session's own snapshots --------------------
def gather_portfolio(ctx: JobContext) -> PortfolioReport:
    """The configured portfolio valued on the session (a ``PortfolioReport``; none: says so)."""
    from stages import portfolio

    loaded = portfolio.from_settings(ctx.settings)
    return portfolio.report_for(loaded, ctx.read, as_of=ctx.as_of, data_root=ctx.data_root,
                                rate=ctx.settings.risk_free_rate)


def _portfolio_extra(report: PortfolioReport | None) -> dict[str, Any]:
    if report is None or report.loaded is None:
        return {}
    return {"portfolio": report.loaded.lineage()}


def gather_briefing(ctx: JobContext) -> BriefingInputs:
    prev = ctx.previous_session

    def read(con: Any) -> BriefingInputs:
        files = datastore.snapshot_files(con, ctx.symbols, [ctx.as_of])
        return BriefingInputs(
            derived=datastore.derived(con, ctx.symbols, prev, ctx.as_of),
            flow=datastore.flow(con, ctx.symbols, ctx.as_of, group_by=(GROUP_STRIKE, GROUP_TOTAL)),
            failed_checks=datastore.failed_checks(con, ctx.partition_key, ctx.symbols),
            providers=[f["provider"] for f in files],
            previous_closes=datastore.closes(con, ctx.symbols, prev),
        )

    return attrs.evolve(ctx.read(read), portfolio=gather_portfolio(ctx))


def compute_briefing(ctx: JobContext, inputs: BriefingInputs, scope: str) -> PartitionResult:
    from stages.analytics.briefing import SymbolBriefing, build_briefing
    from stages.analytics.checks import CheckResult

    derived, flow = _by_symbol(inputs.derived), _by_symbol(inputs.flow)
    items = []
    for symbol in ctx.symbols:
        rows = derived(symbol).to_pylist()
        today = next((r for r in rows if r["date"] == ctx.as_of), None)
        before = next((r for r in rows if r["date"] == ctx.previous_session), None)
        prev_spot = before["spot"] if before and before.get("spot") else inputs.previous_closes.get(symbol)
        checks = tuple(
            CheckResult(asset_key=c["asset_key"], check_name=c["check_name"], severity=c["severity"], status="fail",
                        scope_key=c["scope_key"], message=c["message"] or "")
            for c in inputs.failed_checks if c["scope_key"] == symbol
        )
        items.append(SymbolBriefing(symbol=symbol, as_of=ctx.as_of if today else None, derived=today,
                                    previous_spot=prev_spot, flow=flow(symbol), checks=checks))
    synthetic = _synthetic(ctx, inputs.providers)
    markdown, payload = build_briefing(ctx.as_of, items, synthetic=synthetic, generated_at=ctx.report_time,
                                       portfolio=inputs.portfolio.to_dict() if inputs.portfolio else None)
    day = ctx.as_of.isoformat()
    md = _files.stage_bytes(ctx.data_root, f"{BRIEFING_DIR}/{day}.md", markdown.encode(), ctx.run_id)
    js = _files.stage_bytes(ctx.data_root, f"{BRIEFING_DIR}/{day}.json",
                            (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode(), ctx.run_id)
    table = _report_table([_report_row(BRIEFING_MARKDOWN_KIND, ctx, md), _report_row(BRIEFING_JSON_KIND, ctx, js)])
    return PartitionResult(
        scope_key=scope,
        writes=(datastore.TableWrite(table=datastore.REPORT_FILES.name, rows=table,
                                     partition={"kind": [BRIEFING_MARKDOWN_KIND, BRIEFING_JSON_KIND], "date": ctx.as_of}),),
        files=(md, js),
        check_input=markdown,
        rows=len(items),
        min_data_time=ctx.as_of,
        max_data_time=ctx.as_of,
        extra={"synthetic": synthetic, "symbols": list(ctx.symbols),
               "symbols_with_data": sum(i.derived is not None for i in items),
               "json_path": js.relpath, "json_sha256": js.sha256, "json_bytes": js.bytes,
               **_portfolio_extra(inputs.portfolio)},
    )


# -- dashboard ------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class DashboardInputs:
    derived: pa.Table
    candles: pa.Table
    flow: pa.Table
    health: dict[str, Any]
    providers: list[str | None]
    portfolio: PortfolioReport | None = None  # the configured portfolio valued on the session


def gather_dashboard(ctx: JobContext) -> DashboardInputs:
    start = ctx.calendar.last_sessions(DASHBOARD_SESSIONS, ctx.as_of)[0]

    def read(con: Any) -> DashboardInputs:
        return DashboardInputs(
            derived=datastore.derived(con, ctx.symbols, start, ctx.as_of),
            candles=datastore.candles(con, ctx.symbols, start, ctx.as_of),
            flow=datastore.flow(con, ctx.symbols, ctx.as_of, group_by=(GROUP_STRIKE, GROUP_TOTAL)),
            health=datastore.session_health(con, ctx.partition_key, exclude_jobs=[BUILD_DASHBOARD],
                                           exclude_assets=[DASHBOARD_VIEWS]),
            providers=[f["provider"] for f in datastore.snapshot_files(con, ctx.symbols, [ctx.as_of])],
        )

    return attrs.evolve(ctx.read(read), portfolio=gather_portfolio(ctx))


def compute_dashboard(ctx: JobContext, inputs: DashboardInputs, scope: str) -> PartitionResult:
    from stages.analytics.dashboard import DashboardInputs as Page
    from stages.analytics.dashboard import DashboardSymbol, render_dashboard

    derived, candles, flow = _by_symbol(inputs.derived), _by_symbol(inputs.candles), _by_symbol(inputs.flow)
    symbols = tuple(DashboardSymbol(symbol=s, history=derived(s), prices=candles(s), flow=flow(s)) for s in ctx.symbols)
    synthetic = _synthetic(ctx, inputs.providers)
    page_inputs = Page(symbols=symbols, health=inputs.health,
                       portfolio=inputs.portfolio.to_dict() if inputs.portfolio else None)
    html = render_dashboard(ctx.as_of, page_inputs, synthetic=synthetic, generated_at=ctx.report_time)
    page = _files.stage_bytes(ctx.data_root, f"{DASHBOARD_DIR}/{ctx.as_of.isoformat()}.html", html.encode(), ctx.run_id)
    table = _report_table([_report_row(DASHBOARD_VIEWS, ctx, page)])
    return PartitionResult(
        scope_key=scope,
        writes=(datastore.TableWrite(table=datastore.REPORT_FILES.name, rows=table,
                                     partition={"kind": DASHBOARD_VIEWS, "date": ctx.as_of}),),
        files=(page,),
        check_input=html,
        rows=len(symbols),
        min_data_time=ctx.as_of,
        max_data_time=ctx.as_of,
        extra={"synthetic": synthetic, "symbols": list(ctx.symbols), **_portfolio_extra(inputs.portfolio)},
    )


__all__ = ["BRIEFING_DIR", "DASHBOARD_DIR", "compute_briefing", "compute_dashboard", "gather_briefing",
           "gather_dashboard"]
