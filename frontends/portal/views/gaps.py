"""Gaps: sessions × assets coloured by status, and the gap planner's plan with commands to copy.

The portal never starts a backfill: it shows the commands; a person runs them.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import streamlit as st

from frontends.portal import db, queries, ui

COLOURS = {"ok": "#2e7d32", "stale": "#9ccc65", "partial": "#fbc02d", "skipped": "#90a4ae", "missing": "#eeeeee",
           "failed": "#c62828"}
AGGREGATED = "All symbols (aggregated)"


def default_range(span: tuple[dt.date, dt.date] | None, delay: int) -> tuple[dt.date, dt.date]:
    from ledger.calendar import TradingCalendar

    cal = TradingCalendar.xnys()
    end = cal.latest_completed_session(dt.datetime.now(dt.UTC), delay)
    if span is not None and span[1] < end:
        end = span[1]
    return cal.last_sessions(20, end)[0], end


def heatmap_chart(cells):  # type: ignore[no-untyped-def]
    return alt.Chart(cells).mark_rect(stroke="white", strokeWidth=1).encode(
        x=alt.X("session:O", title="session", axis=alt.Axis(labelAngle=-60)),
        y=alt.Y("asset_key:N", title=None, sort=None),
        color=alt.Color("status:N", scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values())),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["asset_key", "session", "status", "detail"],
    ).properties(height=alt.Step(26))


def plan_section(s, start: dt.date, end: dt.date, symbol: str | None, symbols: list[str]) -> None:  # type: ignore[no-untyped-def]
    st.subheader("Gap planner")
    st.caption("What `options-helper backfill` would run for this window. The portal never starts a backfill: "
               "copy the commands into a terminal.")
    wanted = st.query_params.get("plan") in ("1", "true", "yes")
    if not st.toggle("Plan this window", value=wanted, key="g_plan",
                     help="Runs the gap planner over the window (read-only; takes a moment on a large ledger)."):
        return
    try:
        plan = ui.query("gap_plan_for", str(s.duckdb_path), db.last_seq(s.duckdb_path), start=start, end=end,
                        symbols=(symbol,) if symbol else tuple(symbols))
    except Exception as e:
        st.warning(f"The planner could not plan this window: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return
    c = st.columns(4)
    c[0].metric("Sessions", plan.get("sessions", "-"))
    c[1].metric("Cells expected", plan.get("cells_expected", "-"))
    c[2].metric("Cells missing", plan.get("cells_missing", "-"))
    c[3].metric("Steps", len(plan.get("steps") or []))
    commands = queries.plan_commands(plan)
    if not commands:
        st.success("Nothing to backfill in this window.")
    else:
        st.code("\n".join(commands), language="bash")
        st.caption(f"Or fill the whole window in one go: `options-helper backfill --start {start} --end {end}`"
                   + (f" `--symbols {symbol}`" if symbol else ""))
        with st.expander(f"Steps ({len(plan['steps'])})"):
            st.dataframe(plan["steps"], hide_index=True)
    ranges = plan.get("ranges") or []
    if ranges:
        with st.expander(f"Ranges ({len(ranges)})"):
            st.dataframe(ranges, hide_index=True)
    with st.expander("The plan as JSON"):
        st.json(plan, expanded=False)


def body() -> None:
    s, state = ui.open_ledger("Gaps")
    path, seq = str(s.duckdb_path), state.last_seq
    inputs = ui.query("gaps_inputs", path, seq)
    first, last = default_range(inputs["span"], s.session_close_delay_minutes)
    symbols = sorted(set(s.watchlist()) | set(inputs["symbols"]))
    c = st.columns([2, 2, 3])
    start = c[0].date_input("From", value=first, key="g_start")
    end = c[1].date_input("To", value=last, key="g_end")
    scope = c[2].selectbox("Symbols", [AGGREGATED, *symbols], key="g_symbol")
    if start > end:
        st.warning("'From' is after 'To'.")
        return
    symbol = None if scope == AGGREGATED else scope
    cells = ui.query("heatmap", path, seq, start=start, end=end, symbol=symbol, symbols=tuple(symbols))
    if not len(cells):
        st.info(f"No XNYS sessions between {start} and {end}.")
        return
    summary = queries.heatmap_summary(cells)
    st.caption(" · ".join(f"{k}: {v}" for k, v in summary.items() if v) + f" — {cells['session'].nunique()} sessions")
    st.altair_chart(heatmap_chart(cells), width="stretch")
    with st.expander("Cells"):
        st.dataframe(cells[cells["status"] != "ok"], hide_index=True)
    plan_section(s, start, end, symbol, symbols)


ui.guarded(body)
