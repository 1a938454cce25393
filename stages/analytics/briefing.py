"""The daily briefing (``briefing_markdown``): one Markdown document and its JSON payload.

Per symbol: spot and change, the volatility regime (ATM IV, IV rank and percentile, RV20, RV60,
IV/RV), put/call ratios, call and put walls, gamma peak, expected move, skew, the top building
and unwinding flow by strike, and data-quality warnings. A **SYNTHETIC DATA** banner leads the
document when the inputs came from the synthetic provider, and every briefing carries the
"informational, not financial advice" disclaimer. Rendering is pure: ``generated_at`` is given.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stages.analytics._tables import DASH, arrow_float, clean, fmt_num, opt_float, to_arrow
from stages.analytics.checks import CheckResult
from stages.analytics.flow import GROUP_STRIKE, GROUP_TOTAL

BRIEFING_SCHEMA_VERSION = 1
DISCLAIMER = "Informational only, not financial advice. Figures are derived from end-of-day option data."
SYNTHETIC_BANNER = (
    "SYNTHETIC DATA: every figure below comes from the deterministic synthetic provider, not from a market."
)


@attrs.frozen(kw_only=True)
class SymbolBriefing:
    """What the briefing needs about one symbol for the session.

    ``derived`` is the session's ``derived_metrics`` row as a mapping (``DERIVED_COLUMNS``;
    None when it could not be computed); ``previous_spot`` the previous session's spot, for the
    change; ``flow`` the session's ``options_flow`` rows (the ``group_by='strike'`` rows of the
    narrowest window for the tables, its ``total`` rows for what expired); ``warnings`` free-text data-quality notes; ``checks`` check
    results of the symbol's inputs (failed ones are listed as warnings).
    """

    symbol: str
    as_of: dt.date | None = None
    derived: Mapping[str, Any] | None = None
    previous_spot: float | None = None
    flow: pa.Table | pd.DataFrame | None = None
    warnings: tuple[str, ...] = ()
    checks: tuple[CheckResult, ...] = ()


# -- formatting ----------------------------------------------------------------------------------


def _pct(value: Any, digits: int = 1) -> str:
    v = opt_float(value)
    return DASH if v is None else f"{v * 100:.{digits}f}%"


def _signed(value: Any, digits: int = 2, suffix: str = "") -> str:
    v = opt_float(value)
    return DASH if v is None else f"{v:+,.{digits}f}{suffix}"


def short_money(value: Any) -> str:
    """Signed dollars in a short unit ($1.2M, -$340k): the flow views' notional."""
    v = opt_float(value)
    if v is None:
        return DASH
    sign = "-" if v < 0 else "+"
    v = abs(v)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= size:
            return f"{sign}${v / size:.1f}{unit}"
    return f"{sign}${v:.0f}"


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell or heading."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# -- content -------------------------------------------------------------------------------------
def regime_label(iv_rank: float | None, iv_rv: float | None) -> str:
    """A plain-words reading of the volatility regime (thresholds: rank 20/80, IV/RV 0.8/1.25)."""
    parts = []
    if iv_rank is not None:
        parts.append("IV high in its 1-year range" if iv_rank >= 80 else
                     "IV low in its 1-year range" if iv_rank <= 20 else "IV mid-range")
    if iv_rv is not None:
        parts.append("rich to realized" if iv_rv >= 1.25 else "cheap to realized" if iv_rv <= 0.8 else "near realized")
    return ", ".join(parts) if parts else "not enough history"


def flow_table(flow: pa.Table | pd.DataFrame | None) -> pa.Table:
    """``flow`` as a pyarrow Table (a pandas frame converted once; None: a table with no rows)."""
    return pa.table({}) if flow is None else to_arrow(flow)


def _only(table: pa.Table, column: str, value: str) -> pa.Table:
    """The rows whose ``column`` is ``value`` (all rows when the column is absent)."""
    return table.filter(pc.equal(table[column], value)) if column in table.column_names else table


def narrowest_window(table: pa.Table) -> pa.Table:
    """The rows of the narrowest window (all rows when there is no ``window_size`` column)."""
    if "window_size" not in table.column_names or not table.num_rows:
        return table
    return table.filter(pc.equal(table["window_size"], pc.min(table["window_size"])))


def top_flow(flow: pa.Table | pd.DataFrame | None, top: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``top`` building (net delta-OI notional > 0) and unwinding (< 0) strikes, largest first."""
    table = flow_table(flow)
    if not table.num_rows or not {"delta_oi_notional", "strike"} <= set(table.column_names):
        return [], []
    table = narrowest_window(_only(table, "group_by", GROUP_STRIKE))
    notional, strike = arrow_float(table, "delta_oi_notional"), arrow_float(table, "strike")
    columns = [c for c in ("option_type", "strike", "delta_oi", "delta_oi_notional", "flow_class") if c in table.column_names]

    def pick(rows: np.ndarray) -> list[dict[str, Any]]:
        # Largest |notional| first, then strike (missing last); ties keep the rows' order.
        rows = rows[np.lexsort((strike[rows], -np.abs(notional[rows])))][:top]
        return [{c: clean(v) for c, v in row.items()} for row in table.select(columns).take(rows).to_pylist()]

    return pick(np.flatnonzero(notional > 0)), pick(np.flatnonzero(notional < 0))


def flow_summary(flow: pa.Table | pd.DataFrame | None) -> dict[str, Any]:
    """The pair the flow compares (``from_date``, ``to_date``, ``gap_sessions``) and what expired
    or vanished in it, from the narrowest window's ``total`` rows (all None/0 without them)."""
    out: dict[str, Any] = {"from_date": None, "to_date": None, "gap_sessions": None, "expired_contracts": 0,
                           "expired_oi": None, "expired_notional": None, "vanished_contracts": 0}
    table = flow_table(flow)
    if not table.num_rows or "group_by" not in table.column_names:
        return out
    totals = _only(narrowest_window(table), "group_by", GROUP_TOTAL)
    if not totals.num_rows:
        return out
    first = totals.slice(0, 1).to_pylist()[0]
    out |= {"from_date": clean(first.get("from_date")), "to_date": clean(first.get("to_date")),
            "gap_sessions": clean(first.get("gap_sessions")),
            "expired_contracts": int(np.nansum(arrow_float(totals, "n_expired"))),
            "vanished_contracts": int(np.nansum(arrow_float(totals, "n_disappeared")))}
    for column in ("expired_oi", "expired_notional"):
        values = arrow_float(totals, column)
        values = values[~np.isnan(values)]
        out[column] = float(values.sum()) if len(values) else None
    return out


def _symbol_payload(item: SymbolBriefing, top: int) -> dict[str, Any]:
    d = dict(item.derived or {})
    spot = opt_float(d.get("spot"))
    prev = opt_float(item.previous_spot)
    change = spot - prev if spot is not None and prev is not None else None
    change_pct = change / prev if change is not None and prev else None
    building, unwinding = top_flow(item.flow, top)
    em = opt_float(d.get("em_near_pct"))
    warnings = list(item.warnings)
    warnings += [f"{c.check_name} ({c.severity}): {c.message}" for c in item.checks if c.failed]
    if item.derived is None:
        warnings.append("no derived metrics for this session")
    elif d.get("atm_iv_near") is None or (isinstance(d.get("atm_iv_near"), float) and math.isnan(d["atm_iv_near"])):
        warnings.append("no near-expiry ATM IV (no live expiry with a two-sided ATM straddle)")
    return {
        "symbol": item.symbol,
        "as_of": clean(item.as_of),
        "spot": spot,
        "previous_spot": prev,
        "change": change,
        "change_pct": change_pct,
        "volatility": {
            "atm_iv_near": opt_float(d.get("atm_iv_near")),
            "iv_rank_252d": opt_float(d.get("iv_rank_252d")),
            "atm_iv_near_percentile": opt_float(d.get("atm_iv_near_percentile")),
            "rv_20d": opt_float(d.get("rv_20d")),
            "rv_60d": opt_float(d.get("rv_60d")),
            "iv_rv_20d": opt_float(d.get("iv_rv_20d")),
            "iv_term_slope": opt_float(d.get("iv_term_slope")),
            "skew_near_pp": opt_float(d.get("skew_near_pp")),
            "regime": regime_label(opt_float(d.get("iv_rank_252d")), opt_float(d.get("iv_rv_20d"))),
        },
        "positioning": {
            "pc_oi": opt_float(d.get("pc_oi")),
            "pc_vol": opt_float(d.get("pc_vol")),
            "call_wall": opt_float(d.get("call_wall")),
            "put_wall": opt_float(d.get("put_wall")),
            "gamma_peak_strike": opt_float(d.get("gamma_peak_strike")),
        },
        "expected_move": {"near_pct": em, "near_abs": em * spot if em is not None and spot is not None else None},
        "flow": {"building": building, "unwinding": unwinding, **flow_summary(item.flow)},
        "warnings": warnings,
    }


def _flow_table(title: str, rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return [f"**{title}:** none", ""]
    lines = [f"**{title}:**", "", "| Type | Strike | ΔOI | ΔOI $ | Class |", "|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {_md(r.get('option_type') or DASH)} | {fmt_num(r.get('strike'))} | {_signed(r.get('delta_oi'), 0)} "
            f"| {short_money(r.get('delta_oi_notional'))} | {_md(r.get('flow_class') or DASH)} |"
        )
    return [*lines, ""]


def _expired_line(flow: Mapping[str, Any]) -> str:
    """One line for what expired between the two snapshots (and what vanished), never counted as flow."""
    n = int(flow.get("expired_contracts") or 0)
    if n:
        notional = short_money(opt_float(flow.get("expired_notional")) or 0.0).lstrip("+")
        line = (f"**Expired** (not flow): {n:,} contract{'s' if n != 1 else ''}, open interest {fmt_num(flow.get('expired_oi'), 0)} "
                f"rolled off ({notional})")
    else:
        line = "**Expired** (not flow): none"
    vanished = int(flow.get("vanished_contracts") or 0)
    if vanished:
        line += f"; {vanished:,} contracts vanished before expiry (left out)"
    return line


def _symbol_markdown(p: dict[str, Any]) -> list[str]:
    v, pos, em = p["volatility"], p["positioning"], p["expected_move"]
    lines = [f"## {_md(p['symbol'])} ({p['as_of'] or 'no data'})", ""]
    change = f"{_signed(p['change'])} ({_signed(None if p['change_pct'] is None else p['change_pct'] * 100, 2, '%')})"
    lines.append(f"- **Spot:** {fmt_num(p['spot'])}, change {change}")
    lines.append(
        f"- **Volatility regime:** ATM IV {_pct(v['atm_iv_near'])}, IV rank {fmt_num(v['iv_rank_252d'], 0)}, "
        f"IV percentile {fmt_num(v['atm_iv_near_percentile'], 0)}, RV20 {_pct(v['rv_20d'])}, RV60 {_pct(v['rv_60d'])}, "
        f"IV/RV20 {fmt_num(v['iv_rv_20d'])}; {v['regime']}"
    )
    lines.append(
        f"- **Term and skew:** term slope {_signed(None if v['iv_term_slope'] is None else v['iv_term_slope'] * 100, 1, 'pp')}, "
        f"25Δ skew {_signed(v['skew_near_pp'], 1, 'pp')}"
    )
    lines.append(f"- **Put/call:** OI {fmt_num(pos['pc_oi'])}, volume {fmt_num(pos['pc_vol'])}")
    lines.append(
        f"- **Walls:** call {fmt_num(pos['call_wall'])}, put {fmt_num(pos['put_wall'])}; "
        f"gamma peak {fmt_num(pos['gamma_peak_strike'])}"
    )
    lines.append(f"- **Expected move (near expiry):** ±{_pct(em['near_pct'])} (±{fmt_num(em['near_abs'])})")
    flow = p["flow"]
    versus = ""
    if flow.get("from_date"):
        gap = flow.get("gap_sessions") or 1
        versus = f" vs {flow['from_date']} ({gap} session{'s' if gap != 1 else ''})"
    lines += ["", f"### Flow by strike{versus}", ""]
    lines += _flow_table("Building", flow["building"])
    lines += _flow_table("Unwinding", flow["unwinding"])
    if flow.get("from_date"):
        lines += [_expired_line(flow), ""]
    lines += ["### Data quality", ""]
    lines += [f"- ⚠ {_md(w)}" for w in p["warnings"]] or ["- no warnings"]
    return [*lines, ""]


def build_briefing(
    session: dt.date,
    symbols_data: Sequence[SymbolBriefing],
    *,
    synthetic: bool,
    generated_at: dt.datetime,
    top: int = 3,
    portfolio: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The briefing for ``session`` as (Markdown, JSON-ready payload); symbols in the given order.
    ``portfolio`` (``PortfolioReport.to_dict()``) is the first section; None leaves it out."""
    sections = [_symbol_payload(item, top) for item in symbols_data]
    payload: dict[str, Any] = {
        "schema_version": BRIEFING_SCHEMA_VERSION,
        "session": session.isoformat(),
        "generated_at": generated_at.isoformat(),
        "synthetic": synthetic,
        "disclaimer": DISCLAIMER,
        "symbols": sections,
    }
    lines = [f"# Daily options briefing: {session.isoformat()}", ""]
    if synthetic:
        lines += [f"> **{SYNTHETIC_BANNER}**", ""]
    lines += [f"_{DISCLAIMER}_", "", f"Generated {generated_at.isoformat()}.", ""]
    # -- Portfolio: the first section (stages.analytics.portfolio_view) --
    if portfolio is not None:
        from stages.analytics.portfolio_view import markdown as portfolio_markdown

        payload["portfolio"] = dict(portfolio)
        lines += portfolio_markdown(portfolio)
    if sections:
        lines += ["| Symbol | Spot | Change | ATM IV | IV rank | RV20 | IV/RV20 | P/C OI | EM near |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in sections:
            v = p["volatility"]
            lines.append(
                f"| {_md(p['symbol'])} | {fmt_num(p['spot'])} | {_signed(None if p['change_pct'] is None else p['change_pct'] * 100, 2, '%')} "
                f"| {_pct(v['atm_iv_near'])} | {fmt_num(v['iv_rank_252d'], 0)} | {_pct(v['rv_20d'])} | {fmt_num(v['iv_rv_20d'])} "
                f"| {fmt_num(p['positioning']['pc_oi'])} | ±{_pct(p['expected_move']['near_pct'])} |"
            )
        lines.append("")
    else:
        lines += ["No symbols had data for this session.", ""]
    for p in sections:
        lines += _symbol_markdown(p)
    if synthetic:
        lines += ["---", "", f"**{SYNTHETIC_BANNER}**", ""]
    return "\n".join(lines).rstrip() + "\n", _json_ready(payload)


def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_ready(v) for v in value.tolist()]
    return clean(value)


__all__ = ["BRIEFING_SCHEMA_VERSION", "DISCLAIMER", "SYNTHETIC_BANNER", "SymbolBriefing", "build_briefing",
           "flow_summary", "regime_label", "top_flow"]
