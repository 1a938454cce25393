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

from stages.analytics import _svg
from stages.analytics._tables import clean, dates, num, to_pandas
from stages.analytics.briefing import DISCLAIMER, SYNTHETIC_BANNER, flow_summary
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


def _series(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[list[dt.date], dict[str, np.ndarray]]:
    """Rows sorted by date (one per date, the last given), as dates plus one array per column."""
    if frame.empty or "date" not in frame:
        return [], {}
    ordered = pd.DataFrame({"date": dates(frame, "date")} | {c: num(frame, c) for c in columns})
    ordered = ordered.dropna(subset=["date"]).drop_duplicates("date", keep="last").sort_values("date")
    days = [d.date() for d in pd.to_datetime(ordered["date"])]
    return days, {c: ordered[c].to_numpy(dtype=float) for c in columns}


def _flow_bars(flow: pa.Table | pd.DataFrame | None, symbol: str) -> str:
    frame = to_pandas(flow)
    title = f"{symbol} flow by strike (net ΔOI notional)"
    summary = flow_summary(frame)
    if summary["from_date"]:
        gap = summary["gap_sessions"] or 1
        title += f" vs {summary['from_date']} ({gap} session{'s' if gap != 1 else ''})"
        if summary["expired_contracts"]:  # rolled off: not flow, so not in the bars
            title += (f"; expired, not shown: {summary['expired_contracts']:,} contracts, "
                      f"${(summary['expired_notional'] or 0.0) / 1e6:,.1f}M rolled off")
    if frame.empty or not {"strike", "option_type", "delta_oi_notional"} <= set(frame.columns):
        return _svg.bar_chart(title, [], {})
    if "group_by" in frame:
        frame = frame[frame["group_by"] == GROUP_STRIKE]
    if "window_size" in frame and not frame.empty:
        frame = frame[frame["window_size"] == frame["window_size"].min()]
    table = frame.pivot_table(index="strike", columns="option_type", values="delta_oi_notional", aggfunc="sum")
    table = table.reindex(columns=["call", "put"]).fillna(0.0)
    if len(table) > MAX_FLOW_STRIKES:  # keep the strikes that moved most, shown in strike order
        keep = table.abs().sum(axis=1).sort_values(ascending=False, kind="mergesort").index[:MAX_FLOW_STRIKES]
        table = table.loc[sorted(keep)]
    labels = [f"{k:g}" for k in table.index]
    return _svg.bar_chart(title, labels, {"calls": table["call"].to_numpy(), "puts": table["put"].to_numpy()})


def _symbol_section(item: DashboardSymbol) -> str:
    history = to_pandas(item.history)
    days, derived = _series(history, ("spot", "atm_iv_near", "pc_oi", "pc_vol"))
    price_days, prices = _series(to_pandas(item.prices), ("close",))
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
