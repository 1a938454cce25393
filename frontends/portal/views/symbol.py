"""Symbol: price, ATM IV and derived history, the latest flow by strike, the latest report files."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import streamlit as st

from frontends.portal import ui

DERIVED = ["iv_rank_252d", "atm_iv_near_percentile", "rv_20d", "rv_60d", "iv_rv_20d", "pc_oi", "pc_vol",
           "em_near_pct", "skew_near_pp", "iv_term_slope"]


def line(df, column: str, title: str):  # type: ignore[no-untyped-def]
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("date:T", title=None), y=alt.Y(f"{column}:Q", title=title, scale=alt.Scale(zero=False)),
        tooltip=["date:T", alt.Tooltip(f"{column}:Q", format=",.4f")],
    ).properties(height=220)


def body() -> None:
    s, state = ui.open_ledger("Symbol")
    path, seq = str(s.duckdb_path), state.last_seq
    symbols = ui.query("data_symbols", path, seq)
    if not symbols:
        st.info("No symbol has data yet. Run `options-helper daily` first.")
        return
    wanted = st.query_params.get("symbol")
    index = symbols.index(wanted) if wanted in symbols else 0
    c = st.columns([2, 2, 4])
    symbol = c[0].selectbox("Symbol", symbols, index=index, key="sym")
    sessions = c[1].number_input("Sessions", min_value=5, max_value=2520, value=252, step=21, key="sym_sessions")
    if symbol != wanted:
        st.query_params["symbol"] = symbol
    hist = ui.query("symbol_history", path, seq, symbol, sessions=int(sessions))
    if s.provider == "synthetic":
        st.caption("Provider: synthetic — these figures are generated, not market data.")
    st.subheader(f"{symbol}")
    if not len(hist):
        st.info(f"No candles or derived metrics for {symbol} yet.")
    else:
        left, right = st.columns(2)
        if "close" in hist and hist["close"].notna().any():
            left.altair_chart(line(hist, "close", "close"), width="stretch")
        if "atm_iv_near" in hist and hist["atm_iv_near"].notna().any():
            right.altair_chart(line(hist, "atm_iv_near", "ATM IV (near expiry)"), width="stretch")
        available = [m for m in DERIVED if m in hist.columns and hist[m].notna().any()]
        if available:
            picked = st.multiselect("Derived metrics", available, default=available[:2], key="sym_metrics")
            if picked:
                long = hist.melt(id_vars=["date"], value_vars=picked, var_name="metric").dropna()
                st.altair_chart(alt.Chart(long).mark_line(point=True).encode(
                    x=alt.X("date:T", title=None), y=alt.Y("value:Q", title=None), color="metric:N",
                    tooltip=["date:T", "metric:N", alt.Tooltip("value:Q", format=",.4f")],
                ).properties(height=240), width="stretch")
        with st.expander("History table"):
            st.dataframe(hist.sort_values("date", ascending=False), hide_index=True)

    day, flow = ui.query("latest_flow", path, seq, symbol)
    st.subheader("Latest flow by strike" + (f" ({day})" if day else ""))
    if not len(flow):
        st.info(f"No flow rows for {symbol} yet.")
    else:
        st.altair_chart(alt.Chart(flow).mark_bar().encode(
            x=alt.X("strike:O", title="strike"), y=alt.Y("delta_oi_notional:Q", title="ΔOI notional"),
            color=alt.Color("option_type:N", scale=alt.Scale(domain=["call", "put"], range=["#1e88e5", "#e53935"])),
            xOffset="option_type:N", tooltip=list(flow.columns),
        ).properties(height=260), width="stretch")

    st.subheader("Latest reports")
    reports = ui.query("latest_reports", path, seq, str(s.data_root))
    if not reports:
        st.info("No briefing or dashboard has been written yet.")
    for r in reports:
        p = Path(r["path"])
        cols = st.columns([3, 1])
        cols[0].markdown(f"**{r['kind']}** {r['date']} — [`{p}`]({p.as_uri()})" if r["exists"]
                         else f"**{r['kind']}** {r['date']} — `{p}` (file missing)")
        if r["exists"]:
            cols[1].download_button("Download", data=p.read_bytes(), file_name=p.name, key=f"dl_{r['kind']}")


ui.guarded(body)
