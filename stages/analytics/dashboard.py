"""The HTML dashboard (``dashboard_views``): one self-contained file that opens with no network.

Inline CSS and inline SVG only (no scripts, fonts or stylesheets from anywhere); every piece of
text is escaped with ``html.escape``. Per symbol: price and ATM IV history lines, put/call
history, and flow by strike bars for the session; then a ledger health summary from whatever
recent runs and failed checks the caller passes in. A SYNTHETIC DATA banner leads the page when
the data came from the synthetic provider.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import stages.analytics._svg as _svg
from stages.analytics._tables import arrow_date, arrow_float, arrow_str, clean, dates, to_pandas
from stages.analytics.briefing import DISCLAIMER, SYNTHETIC_BANNER, flow_summary, flow_table, narrowest_window
from stages.analytics.flow import GROUP_STRIKE

MAX_FLOW_STRIKES = 40
MAX_HEALTH_ROWS = 50


@attrs.frozen(kw_only=True)
class DashboardSymbol:
    """One symbol's inputs: ``history`` are its ``derived_metrics`` rows (``date, spot,
    atm_iv_near, pc_oi, pc_vol``, any order); ``prices`` optional candles (``date, close``) for
    the price line, else the derived ``spot`` is drawn; ``flow`` the session's ``options_flow``
    rows (``group_by='strike'`` rows of the narrowest window are drawn)."""

    symbol: str
    history: pa.Table | pd.DataFrame | None = None
    prices: pa.Table | pd.DataFrame | None = None
    flow: pa.Table | pd.DataFrame | None = None


@attrs.frozen(kw_only=True)
class DashboardInputs:
    """Everything the page shows. ``health`` is a plain mapping, for example
    ``{"recent_runs": [{...}, ...], "failed_checks": [{...}, ...], "stale_assets": 2}``: lists of
    mappings become tables (columns from the keys), other values a summary line."""

    symbols: tuple[DashboardSymbol, ...] = ()
    health: Mapping[str, Any] = attrs.field(factory=dict)
    # The Portfolio panel, first on the page: ``PortfolioReport.to_dict()``; None leaves it out.
    portfolio: Mapping[str, Any] | None = None


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:1.5rem;margin:0 0 4px} h2{font-size:1.2rem;margin:28px 0 8px;border-bottom:1px solid #d1d5db}
h3{font-size:1rem;margin:12px 0 4px}
.banner{background:#b91c1c;color:#fff;font-weight:700;padding:10px 14px;border-radius:6px;margin:8px 0 12px}
.note{color:#4b5563;font-size:.9rem} .muted{fill:#6b7280}
.grid-charts{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px 10px}
svg.chart{font-size:10px;fill:#374151} svg.chart .grid{stroke:#e5e7eb} svg.chart .axis{stroke:#6b7280}
table{border-collapse:collapse;font-size:.85rem;background:#fff} th,td{border:1px solid #e5e7eb;padding:3px 8px;text-align:left}
th{background:#f3f4f6}
table.portfolio tr[data-status="missing"] td,table.portfolio tr[data-status="unpriced"] td{color:#b91c1c}
table.portfolio tr[data-status="expired"] td{color:#6b7280}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _days(table: pa.Table, column: str) -> np.ndarray:
    """A date column as ``datetime64[D]`` (NaT for missing or unparseable)."""
    kind = table.schema.field(column).type
    if pa.types.is_date(kind) or (pa.types.is_timestamp(kind) and kind.tz is None):
        return arrow_date(table, column)
    return dates(to_pandas(table.select([column])), column)  # strings, zoned times: pandas' parsing


def _series(table: pa.Table, columns: Sequence[str]) -> tuple[list[dt.date], dict[str, np.ndarray]]:
    """Rows sorted by date (one per date, the last given), as dates plus one array per column."""
    if not table.num_rows or "date" not in table.column_names:
        return [], {}
    days = _days(table, "date")
    rows = np.flatnonzero(~np.isnat(days))[::-1]  # latest row first, so np.unique's first is the last given
    distinct, first = np.unique(days[rows], return_index=True)
    rows = rows[first]
    return list(distinct.astype(object)), {c: arrow_float(table, c)[rows] for c in columns}


def _flow_bars(flow: pa.Table | pd.DataFrame | None, symbol: str) -> str:
    table = flow_table(flow)
    title = f"{symbol} flow by strike (net ΔOI notional)"
    summary = flow_summary(table)
    if summary["from_date"]:
        gap = summary["gap_sessions"] or 1
        title += f" vs {summary['from_date']} ({gap} session{'s' if gap != 1 else ''})"
        if summary["expired_contracts"]:  # rolled off: not flow, so not in the bars
            title += (f"; expired, not shown: {summary['expired_contracts']:,} contracts, "
                      f"${(summary['expired_notional'] or 0.0) / 1e6:,.1f}M rolled off")
    if not table.num_rows or not {"strike", "option_type", "delta_oi_notional"} <= set(table.column_names):
        return _svg.bar_chart(title, [], {})
    table = narrowest_window(table.filter(pc.equal(table["group_by"], GROUP_STRIKE))
                             if "group_by" in table.column_names else table)
    # Net notional per strike and type (a pivot: strikes with a type, ascending; missing sums 0).
    strike, kind = arrow_float(table, "strike"), arrow_str(table, "option_type")
    notional = arrow_float(table, "delta_oi_notional")
    keyed = ~np.isnan(strike) & pd.notna(kind)
    strikes, slot = np.unique(strike[keyed], return_inverse=True)
    kind, notional = kind[keyed], np.where(np.isnan(notional[keyed]), 0.0, notional[keyed])
    calls, puts = (np.bincount(slot, weights=np.where(kind == name, notional, 0.0), minlength=len(strikes))
                   for name in ("call", "put"))
    if len(strikes) > MAX_FLOW_STRIKES:  # keep the strikes that moved most, shown in strike order
        keep = np.sort(np.argsort(-(np.abs(calls) + np.abs(puts)), kind="stable")[:MAX_FLOW_STRIKES])
        strikes, calls, puts = strikes[keep], calls[keep], puts[keep]
    labels = [f"{k:g}" for k in strikes]
    return _svg.bar_chart(title, labels, {"calls": calls, "puts": puts})


def _symbol_section(item: DashboardSymbol) -> str:
    days, derived = _series(flow_table(item.history), ("spot", "atm_iv_near", "pc_oi", "pc_vol"))
    price_days, prices = _series(flow_table(item.prices), ("close",))
    if price_days:
        price_chart = _svg.line_chart(f"{item.symbol} close", price_days, {"close": prices["close"]})
    else:
        price_chart = _svg.line_chart(f"{item.symbol} spot", days, {"spot": derived.get("spot", [])})
    iv_chart = _svg.line_chart(
        f"{item.symbol} ATM IV (near expiry, %)", days, {"ATM IV %": derived.get("atm_iv_near", np.array([])) * 100}
    )
    pc_chart = _svg.line_chart(
        f"{item.symbol} put/call ratios", days, {"P/C OI": derived.get("pc_oi", []), "P/C volume": derived.get("pc_vol", [])}
    )
    charts = [("Price", price_chart), ("ATM implied volatility", iv_chart), ("Put/call", pc_chart),
              ("Flow by strike", _flow_bars(item.flow, item.symbol))]
    cards = "".join(f'<div class="card"><h3>{_e(name)}</h3>{svg}</div>' for name, svg in charts)
    return f'<section><h2>{_e(item.symbol)}</h2><div class="grid-charts">{cards}</div></section>'


def _records_table(rows: Sequence[Mapping[str, Any]]) -> str:
    rows = list(rows)[:MAX_HEALTH_ROWS]
    if not rows:
        return '<p class="note">none</p>'
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(clean(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _health_section(health: Mapping[str, Any]) -> str:
    parts = ["<section><h2>Ledger health</h2>"]
    if not health:
        parts.append('<p class="note">No ledger health information was provided.</p>')
    scalars = {k: v for k, v in health.items() if not isinstance(v, list | tuple)}
    if scalars:
        items = "".join(f"<li><b>{_e(k)}</b>: {_e(clean(v))}</li>" for k, v in scalars.items())
        parts.append(f"<ul>{items}</ul>")
    for key, value in health.items():
        if isinstance(value, list | tuple):
            title = str(key).replace("_", " ").capitalize()
            parts.append(f"<h3>{_e(title)} ({len(value)})</h3>")
            parts.append(_records_table([v if isinstance(v, Mapping) else {"value": v} for v in value]))
    parts.append("</section>")
    return "".join(parts)


def render_dashboard(
    session: dt.date,
    inputs: DashboardInputs,
    *,
    synthetic: bool,
    generated_at: dt.datetime,
) -> str:
    """The dashboard for ``session`` as one self-contained HTML document (a string)."""
    title = f"options-helper dashboard: {session.isoformat()}"
    banner = f'<div class="banner">{_e(SYNTHETIC_BANNER)}</div>' if synthetic else ""
    symbols = "".join(_symbol_section(item) for item in inputs.symbols) or '<p class="note">No symbols.</p>'
    if inputs.portfolio is not None:
        from stages.analytics.portfolio_view import html_section

        symbols = html_section(inputs.portfolio) + symbols
    return (
        "<!DOCTYPE html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1>{banner}"
        f'<p class="note">{_e(DISCLAIMER)} Generated {_e(generated_at.isoformat())}.</p></header>'
        f"<main>{symbols}{_health_section(inputs.health)}</main>"
        f'<footer><p class="note">{_e(DISCLAIMER)}</p>{banner}</footer>'
        "</body></html>\n"
    )


__all__ = ["DashboardInputs", "DashboardSymbol", "render_dashboard"]
