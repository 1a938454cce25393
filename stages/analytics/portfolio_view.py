"""The Portfolio section of the briefing (Markdown) and of the dashboard (HTML).

Both render the JSON shape of ``stages.portfolio.report.PortfolioReport.to_dict()``:
``{path, sha256, as_of, positions: [...], exposure: {...}, stress: [...], notes: [...]}``; a
missing portfolio (``path`` None) renders as a sentence saying so. Pure functions of that dict.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from stages.analytics._tables import DASH, fmt_num, opt_float


def _signed(value: Any, digits: int = 2) -> str:
    v = opt_float(value)
    return DASH if v is None else f"{v:+,.{digits}f}"


def _pct(value: Any, digits: int = 1, signed: bool = False) -> str:
    v = opt_float(value)
    if v is None:
        return DASH
    return f"{v * 100:+.{digits}f}%" if signed else f"{v * 100:.{digits}f}%"


def _money(value: Any, signed: bool = False) -> str:
    v = opt_float(value)
    if v is None:
        return DASH
    sign = "-" if v < 0 else "+" if signed and v > 0 else ""
    return f"{sign}${abs(v):,.0f}"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def status_label(p: Mapping[str, Any]) -> str:
    """What a trader reads in the Status column: ok, expired (last mark of DATE), missing legs."""
    status = p.get("status") or "ok"
    if status in ("missing", "unpriced"):
        legs = "; ".join(p.get("missing_legs") or [])
        word = "missing" if status == "missing" else "no price for"
        return f"{word}: {legs}" if legs else word
    if status == "expired":
        marks = p.get("marks_as_of") or []
        return f"expired (last mark {marks[-1]})" if marks else "expired"
    return "ok"


POSITION_COLUMNS = ("ID", "Symbol", "Position", "DTE", "Mark", "Cost", "Value", "P&L", "P&L %", "Spr %", "Δ sh",
                    "Θ $/day", "Vega $/pt", "Status")


def position_cells(p: Mapping[str, Any]) -> tuple[str, ...]:
    return (str(p.get("id")), str(p.get("symbol")), str(p.get("description")), fmt_num(p.get("dte"), 0),
            fmt_num(p.get("mark")), _money(p.get("cost")), _money(p.get("value")), _money(p.get("pnl"), signed=True),
            _pct(p.get("pnl_pct"), signed=True), _pct(p.get("spread_pct")), _signed(p.get("delta_shares"), 1),
            _signed(p.get("theta_per_day")), _signed(p.get("vega_per_vol_point")), status_label(p))


def headline(report: Mapping[str, Any]) -> str:
    sha = report.get("sha256") or ""
    when = report.get("as_of")
    marks = f"marks from the {when} option snapshots" if when else "no stored option snapshots to value it"
    return f"Portfolio `{report.get('path')}` (sha256 {sha[:12]}), {marks}."


def exposure_line(e: Mapping[str, Any]) -> str:
    return (f"**Exposure:** delta {_signed(e.get('delta_shares'), 1)} sh ({_money(e.get('delta_dollars'))}), "
            f"gamma {_signed(e.get('gamma_shares'), 2)} sh per $1 ({_money(e.get('gamma_dollars_1pct'))} delta per 1% move), "
            f"theta {_money(e.get('theta_per_day'))}/day, vega {_money(e.get('vega_per_vol_point'))} per vol point; "
            f"{e.get('positions_valued', 0)} of {e.get('positions', 0)} positions valued"
            + (f", {e['legs_missing']} leg(s) missing" if e.get("legs_missing") else "") + ".")


def markdown(report: Mapping[str, Any]) -> list[str]:
    """The briefing's ``## Portfolio`` section as Markdown lines."""
    lines = ["## Portfolio", ""]
    if not report.get("path"):
        notes = report.get("notes") or ["no portfolio configured"]
        return [*lines, f"No portfolio: {_md(notes[0]).removeprefix('no portfolio: ')}.", ""]
    lines += [headline(report), ""]
    positions = report.get("positions") or []
    if positions:
        lines += ["| " + " | ".join(POSITION_COLUMNS) + " |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        lines += ["| " + " | ".join(_md(c) for c in position_cells(p)) + " |" for p in positions]
        lines.append("")
    exposure = report.get("exposure") or {}
    if exposure:
        lines += [exposure_line(exposure), ""]
        by_symbol = exposure.get("by_symbol") or []
        if by_symbol:
            lines += ["| Underlying | Spot | Δ shares | Δ $ | Γ sh/$1 | Θ $/day | Vega $/pt |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {_md(r['symbol'])} | {fmt_num(r.get('spot'))} | {_signed(r.get('delta_shares'), 1)} "
                      f"| {_money(r.get('delta_dollars'))} | {_signed(r.get('gamma_shares'))} "
                      f"| {_money(r.get('theta_per_day'))} | {_money(r.get('vega_per_vol_point'))} |" for r in by_symbol]
            lines.append("")
    stress = report.get("stress") or []
    if stress:
        lines += ["**Stress** (full Black-Scholes repricing of every leg):", "", "| Scenario | P&L | P&L % |",
                  "|---|---:|---:|"]
        lines += [f"| {_md(s['name'])} | {_money(s.get('pnl'), signed=True)} | {_pct(s.get('pnl_pct'), signed=True)} |" for s in stress]
        left_out = stress[0].get("legs_left_out") or 0
        lines.append("")
        if left_out:
            lines += [f"_{left_out} leg(s) could not be repriced (missing, expired or without IV) and are left out._", ""]
    lines += [f"- ⚠ {_md(n)}" for n in report.get("notes") or []]
    if report.get("notes"):
        lines.append("")
    return lines


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def html_section(report: Mapping[str, Any]) -> str:
    """The dashboard's Portfolio panel (escaped HTML)."""
    parts = ['<section id="portfolio"><h2>Portfolio</h2>']
    if not report.get("path"):
        notes = report.get("notes") or ["no portfolio configured"]
        parts.append(f'<p class="note">No portfolio: {_e(notes[0].removeprefix("no portfolio: "))}.</p></section>')
        return "".join(parts)
    parts.append(f'<p class="note">{_e(headline(report).replace("`", ""))}</p>')
    positions = report.get("positions") or []
    if positions:
        head = "".join(f"<th>{_e(c)}</th>" for c in POSITION_COLUMNS)
        body = "".join(
            f'<tr data-position="{_e(p.get("id"))}" data-status="{_e(p.get("status"))}">'
            + "".join(f"<td>{_e(c)}</td>" for c in position_cells(p)) + "</tr>" for p in positions)
        parts.append(f'<table class="portfolio"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    exposure = report.get("exposure") or {}
    if exposure:
        parts.append(f"<p>{_e(exposure_line(exposure).replace('**', ''))}</p>")
    stress = report.get("stress") or []
    if stress:
        rows = "".join(f"<tr><td>{_e(s['name'])}</td><td>{_e(_money(s.get('pnl'), signed=True))}</td>"
                       f"<td>{_e(_pct(s.get('pnl_pct'), signed=True))}</td></tr>" for s in stress)
        parts.append("<h3>Stress (full Black-Scholes repricing)</h3>"
                     f'<table class="stress"><thead><tr><th>Scenario</th><th>P&amp;L</th><th>P&amp;L %</th></tr></thead>'
                     f"<tbody>{rows}</tbody></table>")
    notes = report.get("notes") or []
    if notes:
        parts.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</section>")
    return "".join(parts)


__all__ = ["POSITION_COLUMNS", "exposure_line", "headline", "html_section", "markdown", "position_cells",
           "status_label"]
