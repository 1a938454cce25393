"""The portal's entry point: ``streamlit run frontends/portal/app.py`` (or ``options-helper portal``).

The default page (Health) is served at ``/``; the others at ``/gaps``, ``/runs``, ``/data``, ``/symbol``, ``/portfolio``.
Pages are registered with ``st.navigation`` and live in ``views/`` (a folder named ``pages/`` would
switch on Streamlit's legacy auto-discovered navigation).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).with_name("views")

st.set_page_config(page_title="options-helper portal", page_icon=":material/monitoring:", layout="wide")

PAGES = [
    st.Page(VIEWS / "health.py", title="Health", icon=":material/monitor_heart:", default=True),
    st.Page(VIEWS / "gaps.py", title="Gaps", icon=":material/grid_view:", url_path="gaps"),
    st.Page(VIEWS / "runs.py", title="Runs", icon=":material/history:", url_path="runs"),
    st.Page(VIEWS / "data.py", title="Data", icon=":material/table_view:", url_path="data"),
    st.Page(VIEWS / "symbol.py", title="Symbol", icon=":material/candlestick_chart:", url_path="symbol"),
    st.Page(VIEWS / "portfolio.py", title="Portfolio", icon=":material/account_balance_wallet:", url_path="portfolio"),
]

st.navigation(PAGES).run()
