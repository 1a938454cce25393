"""Tiny inline-SVG charts for the offline dashboard (private): lines over dates, bars by category.

No JavaScript, no fonts, no external references; every piece of text is escaped. Coordinates
are computed with numpy; the markup is assembled from those arrays.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence

import numpy as np

WIDTH, HEIGHT = 560, 190
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 14, 40
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea")
Values = Sequence[float] | np.ndarray


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e3:
        return f"{value / 1e3:.1f}k"
    if magnitude >= 10:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _empty(title: str, note: str) -> str:
    return (
        _open(title)
        + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="muted">{html.escape(note)}</text></svg>'
    )


def _open(title: str) -> str:
    # No xmlns attribute: inline SVG in HTML5 does not need it, and the page must carry no URL.
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">'
        f"<title>{html.escape(title)}</title>"
    )


def _y_axis(lo: float, hi: float, to_y) -> list[str]:
    parts = []
    for value in np.linspace(lo, hi, 4):
        y = to_y(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{html.escape(_fmt(value))}</text>')
    return parts


def _bounds(values: np.ndarray, include_zero: bool = False) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    lo, hi = float(finite.min()), float(finite.max())
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.05 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.06
    return lo - pad, hi + pad


def line_chart(title: str, days: Sequence[dt.date], series: dict[str, Values]) -> str:
    """One or more lines over ``days`` (aligned with each series; NaN breaks a line)."""
    values = {name: np.asarray(v, dtype=float) for name, v in series.items()}
    if not days or not any(np.isfinite(v).any() for v in values.values()):
        return _empty(title, "no data")
    x_days = np.array([d.toordinal() for d in days], dtype=float)
    x_lo, x_hi = x_days.min(), x_days.max()
    span = (x_hi - x_lo) or 1.0
    lo, hi = _bounds(np.concatenate(list(values.values())))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    xs = LEFT + (x_days - x_lo) / span * plot_w if x_hi > x_lo else np.full(len(x_days), LEFT + plot_w / 2)

    def to_y(v):
        return TOP + (hi - v) / (hi - lo) * plot_h

    parts = [_open(title), *_y_axis(lo, hi, to_y)]
    for i, (name, v) in enumerate(values.items()):
        color = PALETTE[i % len(PALETTE)]
        ys = to_y(v)
        ok = np.isfinite(ys)
        # Split into runs of finite points so a gap in the data shows as a gap in the line.
        breaks = np.flatnonzero(np.diff(ok.astype(int)) != 0) + 1
        for run in np.split(np.arange(len(ys)), breaks):
            run = run[ok[run]]
            if run.size == 1:
                parts.append(f'<circle cx="{xs[run[0]]:.1f}" cy="{ys[run[0]]:.1f}" r="2.5" fill="{color}"/>')
            elif run.size > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs[run], ys[run], strict=True))
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{points}"/>')
        parts.append(
            f'<text x="{LEFT + 8 + 140 * i}" y="{HEIGHT - 6}" fill="{color}">&#9632; {html.escape(name)}</text>'
        )
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 22}">{html.escape(days[0].isoformat())}</text>')
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 22}" text-anchor="end">{html.escape(days[-1].isoformat())}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, categories: Sequence[str], series: dict[str, Values]) -> str:
    """Grouped signed bars per category (e.g. flow by strike, calls and puts side by side)."""
    values = {name: np.nan_to_num(np.asarray(v, dtype=float)) for name, v in series.items()}
    if not categories or not any(np.any(v != 0) for v in values.values()):
        return _empty(title, "no flow")
    lo, hi = _bounds(np.concatenate(list(values.values())), include_zero=True)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def to_y(v):
        return TOP + (hi - v) / (hi - lo) * plot_h

    slot = plot_w / len(categories)
    bar = max(1.0, slot * 0.8 / max(1, len(values)))
    zero = to_y(0.0)
    parts = [_open(title), *_y_axis(lo, hi, to_y)]
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}" class="axis"/>')
    for i, (name, v) in enumerate(values.items()):
        color = PALETTE[i % len(PALETTE)]
        ys = to_y(v)
        xs = LEFT + np.arange(len(categories)) * slot + slot * 0.1 + i * bar
        for x, y, raw, label in zip(xs, ys, v, categories, strict=True):
            top, height = min(y, zero), abs(zero - y)
            tip = html.escape(f"{name} {label}: {_fmt(raw)}")
            parts.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="{color}">'
                f"<title>{tip}</title></rect>"
            )
        parts.append(
            f'<text x="{LEFT + 8 + 140 * i}" y="{HEIGHT - 6}" fill="{color}">&#9632; {html.escape(name)}</text>'
        )
    step = max(1, len(categories) // 8)
    for j in range(0, len(categories), step):
        x = LEFT + (j + 0.5) * slot
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 22}" text-anchor="middle">{html.escape(categories[j])}</text>')
    parts.append("</svg>")
    return "".join(parts)
