"""Data: browse tables, and a read-only SQL box (one SELECT, checked, limited, timed out)."""

from __future__ import annotations

import streamlit as st

from frontends.portal import sql_guard, ui


def browser(path: str, seq: int) -> None:
    tables = ui.query("tables", path, seq)
    names = [f"{r.schema}.{r.name}" for r in tables.itertuples()]
    st.dataframe(tables, hide_index=True, height=240)
    c = st.columns([3, 2, 1, 1])
    chosen = c[0].selectbox("Table", names, key="d_table")
    if not chosen:
        return
    schema, table = chosen.split(".", 1)
    columns = ui.query("table_columns", path, seq, schema, table)
    names_cols = list(columns["column_name"])
    default = next((n for n in ("seq", "date", "started_at", "checked_at") if n in names_cols), None)
    order = c[1].selectbox("Order by", ["(none)", *names_cols],
                           index=(names_cols.index(default) + 1) if default else 0, key="d_order")
    desc = c[2].toggle("Newest first", value=True, key="d_desc")
    limit = c[3].number_input("Rows", min_value=10, max_value=10_000, value=100, step=50, key="d_limit")
    df = ui.query("table_preview", path, seq, schema, table, limit=int(limit),
                  order_by=None if order == "(none)" else order, descending=bool(desc))
    st.caption(f"{chosen}: {len(columns)} columns; showing {len(df):,} rows")
    st.dataframe(df, hide_index=True)
    with st.expander("Columns"):
        st.dataframe(columns, hide_index=True)


def sql_box(path: str, data_root: str) -> None:
    st.caption("One SELECT at a time, on a read-only connection, with a row limit and a timeout. Statements "
               "that write, change settings, or read files and URLs are refused.")
    sql = st.text_area("SQL", key="sql_text", height=140,
                       placeholder="SELECT job_name, status, count(*) FROM meta.ingestion_runs GROUP BY ALL")
    c = st.columns([1, 1, 4])
    limit = c[0].number_input("Row limit", min_value=1, max_value=sql_guard.MAX_ROW_LIMIT,
                              value=sql_guard.DEFAULT_ROW_LIMIT, step=100, key="sql_limit")
    timeout = c[1].number_input("Timeout (s)", min_value=1, max_value=120,
                                value=int(sql_guard.DEFAULT_TIMEOUT_SECONDS), key="sql_timeout")
    if st.button("Run query", key="sql_run", type="primary"):
        try:
            result = sql_guard.run(path, sql, data_root=data_root, limit=int(limit), timeout_seconds=float(timeout))
        except Exception as e:
            st.error(sql_guard.explain_refusal(e))
            return
        note = f" (limited to {int(limit):,}; more rows exist)" if result.truncated else ""
        st.success(f"{len(result.frame):,} rows in {result.seconds * 1000:.0f} ms{note}")
        st.dataframe(result.frame, hide_index=True)


def body() -> None:
    s, state = ui.open_ledger("Data")
    tab_tables, tab_sql = st.tabs(["Tables", "SQL"])
    with tab_tables:
        browser(str(s.duckdb_path), state.last_seq)
    with tab_sql:
        sql_box(str(s.duckdb_path), str(s.data_root))


ui.guarded(body)
