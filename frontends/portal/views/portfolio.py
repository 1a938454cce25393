"""Portfolio: the portfolio file valued from a session's stored chain snapshots (read-only).

Time travel by session: pick any session with stored snapshots of the portfolio's underlyings
(``?session=YYYY-MM-DD``). Everything shown comes from ``stages.portfolio`` (the same report as
``options-helper portfolio show`` and the briefing's first section); reads are read-only
connections opened per query, cached while the ledger's head and the portfolio file stay the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from frontends.portal import db, ui

POSITION_COLUMNS = ["id", "symbol", "description", "status", "dte", "mark", "cost", "value", "pnl", "pnl_pct",
                    "spread_pct", "delta_shares", "delta_dollars", "gamma_shares", "theta_per_day",
                    "vega_per_vol_point", "missing_legs", "marks_as_of"]
STATUS_TONES = {"ok": "#e8f5e9", "missing": "#ffebee", "unpriced": "#ffebee", "expired": "#eceff1"}
PERCENT_COLUMNS = ("pnl_pct", "spread_pct", "spot_pct")


def _column_config() -> dict[str, Any]:
    n = st.column_config.NumberColumn
    money = {c: n(c, format="$%,.0f") for c in ("cost", "value", "pnl", "delta_dollars", "theta_per_day",
                                                  "vega_per_vol_point", "gamma_dollars_1pct")}
    pct = {c: n(c.replace("_pct", " %"), format="%.1f%%") for c in PERCENT_COLUMNS}
    return {**money, **pct, "mark": n("mark", format="%.2f"), "delta_shares": n("delta_shares", format="%+.1f"),
            "gamma_shares": n("gamma_shares", format="%.2f"), "spot": n("spot", format="%.2f")}


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Percent columns as percents (the report keeps fractions)."""
    out = frame.copy()
    for column in PERCENT_COLUMNS:
        if column in out:
            out[column] = pd.to_numeric(out[column], errors="coerce") * 100
    return out


def _reader(path: str) -> Any:
    def read(fn: Any) -> Any:
        with db.read_only(path) as con:
            return fn(con)

    return read


@st.cache_data(ttl=ui.CACHE_TTL_SECONDS, show_spinner=False, max_entries=64)
def _sessions(path: str, seq: int, portfolio_path: str, sha256: str) -> list[dt.date]:
    del seq, sha256  # cache keys only
    from stages.portfolio import load_portfolio
    from stages.portfolio.market import sessions

    portfolio = load_portfolio(portfolio_path).portfolio
    return list(_reader(path)(lambda con: sessions(con, portfolio)))


@st.cache_data(ttl=ui.CACHE_TTL_SECONDS, show_spinner=False, max_entries=64)
def _report(path: str, seq: int, portfolio_path: str, sha256: str, session: dt.date, data_root: str,
            rate: float) -> dict[str, Any]:
    del seq, sha256
    from stages import portfolio

    loaded = portfolio.load_portfolio(portfolio_path)
    return portfolio.report_for(loaded, _reader(path), as_of=session, data_root=data_root, rate=rate).to_dict()


def _money(value: Any) -> str:
    return "-" if value is None else f"{'-' if value < 0 else ''}${abs(value):,.0f}"


def body() -> None:
    from stages import portfolio
    from stages.portfolio.report import NO_PORTFOLIO

    s, state = ui.open_ledger("Portfolio")
    loaded = portfolio.from_settings(s)
    if loaded is None:
        st.info(NO_PORTFOLIO[0].upper() + NO_PORTFOLIO[1:] + ".")
        return
    st.caption(f"Portfolio file `{loaded.path}` · sha256 `{loaded.sha256[:12]}` · "
               f"{len(loaded.portfolio.positions)} position(s) on {', '.join(loaded.symbols) or 'no underlyings'}")
    path, seq = str(s.duckdb_path), state.last_seq
    sessions = _sessions(path, seq, str(loaded.path), loaded.sha256)
    if not sessions:
        st.info("No stored option snapshot of the portfolio's underlyings yet. Run "
                "`options-helper snapshot-options` (or `options-helper daily`) first.")
        return
    wanted = st.query_params.get("session")
    labels = [d.isoformat() for d in sessions]
    index = labels.index(wanted) if wanted in labels else 0
    picked = st.selectbox("Session (time travel: marks from that session's snapshots)", labels, index=index,
                          key="pf_session")
    if picked != wanted:
        st.query_params["session"] = picked
    report = _report(path, seq, str(loaded.path), loaded.sha256, dt.date.fromisoformat(picked), str(s.data_root),
                     s.risk_free_rate)
    if s.provider == "synthetic":
        st.caption("Provider: synthetic — these figures are generated, not market data.")

    exposure = report["exposure"]
    st.subheader(f"Positions ({report['as_of']})")
    positions = pd.DataFrame(report["positions"])
    if len(positions):
        for column in ("missing_legs", "marks_as_of"):
            positions[column] = positions[column].map(lambda v: ", ".join(v) if v else "")
        shown = _display(positions[[c for c in POSITION_COLUMNS if c in positions.columns]])
        styled = shown.style.map(lambda v: f"background-color: {STATUS_TONES[v]}" if v in STATUS_TONES else "",
                                 subset=["status"])
        st.dataframe(styled, hide_index=True, width="stretch", column_config=_column_config())
    else:
        st.info("The portfolio has no positions.")
    for note in report["notes"]:
        st.warning(note)

    st.subheader("Exposure")
    c = st.columns(5)
    c[0].metric("Delta (shares)", f"{exposure.get('delta_shares', 0):+,.1f}")
    c[1].metric("Delta ($)", _money(exposure.get("delta_dollars")))
    c[2].metric("Gamma ($ delta per 1%)", _money(exposure.get("gamma_dollars_1pct")))
    c[3].metric("Theta ($/day)", _money(exposure.get("theta_per_day")))
    c[4].metric("Vega ($/vol pt)", _money(exposure.get("vega_per_vol_point")))
    if exposure.get("by_symbol"):
        st.dataframe(pd.DataFrame(exposure["by_symbol"]), hide_index=True, width="stretch",
                     column_config=_column_config())

    st.subheader("Stress (full Black-Scholes repricing)")
    stress = pd.DataFrame(report["stress"])
    if len(stress):
        st.dataframe(_display(stress[["name", "pnl", "pnl_pct", "spot_pct", "vol_points", "days", "legs_repriced",
                                      "legs_left_out"]]), hide_index=True, width="stretch", column_config=_column_config())


ui.guarded(body)
