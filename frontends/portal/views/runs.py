"""Runs: a filterable list; ``?run_id=`` shows one run's timeline, assets, checks, arguments and error."""

from __future__ import annotations

import streamlit as st

from frontends.portal import ui


def run_page(path: str, seq: int, run_id: str) -> None:
    detail = ui.query("run_detail", path, seq, run_id)
    if st.button("← All runs", key="back"):
        st.query_params.clear()
        st.rerun()
    if detail is None:
        st.warning(f"No run {run_id} in this ledger.")
        return
    r = detail["run"]
    st.subheader(f"{r['job_name']} · {r['status']}")
    st.code(r["run_id"], language=None)
    c = st.columns(5)
    c[0].metric("Partition", r.get("partition_key") or "-")
    c[1].metric("Triggered by", r.get("triggered_by") or "-")
    c[2].metric("Duration", f"{(r.get('duration_ms') or 0) / 1000:.1f} s" if r.get("duration_ms") is not None else "-")
    c[3].metric("Provider", r.get("provider") or "-")
    c[4].metric("Scopes", len(r.get("scope_keys") or []))
    st.caption(f"started {ui.utc(r.get('started_at'))} · ended {ui.utc(r.get('ended_at'))} · "
               f"code version {r.get('code_version') or '-'} · app {r.get('app_version') or '-'}"
               + (f" · backfill {r['backfill_id']}" if r.get("backfill_id") else "")
               + (f" · parent {r['parent_run_id']}" if r.get("parent_run_id") else ""))
    if detail["error"]:
        e = detail["error"]
        st.error(f"**{e['type']}**: {e['message']}")
        st.caption(f"fingerprint {e['fingerprint'] or '-'} · template: {e['template']}")
    st.markdown("**Arguments** (redacted)")
    st.json(detail["args"], expanded=True)
    st.markdown("**Event timeline**")
    st.dataframe(detail["events"], hide_index=True)
    st.markdown("**Assets**")
    if len(detail["assets"]):
        st.dataframe(ui.tinted(detail["assets"], "status"), hide_index=True)
    else:
        st.caption("No asset events.")
    st.markdown("**Checks**")
    if len(detail["checks"]):
        st.dataframe(ui.tinted(detail["checks"], "status"), hide_index=True)
    else:
        st.caption("No checks.")


def list_page(path: str, seq: int) -> None:
    options = ui.query("run_filters", path, seq)
    c = st.columns([2, 2, 2, 2, 3, 1])
    status = c[0].selectbox("Status", ["(any)", *options["status"]], key="f_status")
    job = c[1].selectbox("Job", ["(any)", *options["job_name"]], key="f_job")
    trigger = c[2].selectbox("Triggered by", ["(any)", *options["triggered_by"]], key="f_trigger")
    partition = c[3].text_input("Partition (YYYY-MM-DD)", key="f_partition")
    search = c[4].text_input("Search (run id prefix, error text, backfill id)", key="f_search")
    limit = c[5].number_input("Rows", min_value=10, max_value=5000, value=200, step=50, key="f_limit")

    def pick(v: str) -> str | None:
        return None if v == "(any)" else v

    df = ui.query("runs", path, seq, status=pick(status), job=pick(job), triggered_by=pick(trigger),
                  partition=partition.strip() or None, search=search.strip() or None, limit=int(limit))
    st.caption(f"{len(df):,} runs shown, newest first. Open a run by its link, or paste its id below.")
    st.dataframe(ui.tinted(ui.with_run_links(df), "status"), hide_index=True,
                 column_config={"run_id": ui.run_link_column("run_id")})
    wanted = st.text_input("Open run id", key="open_run")
    if wanted.strip():
        st.query_params["run_id"] = wanted.strip()
        st.rerun()


def body() -> None:
    s, state = ui.open_ledger("Runs")
    path = str(s.duckdb_path)
    run_id = st.query_params.get("run_id")
    if run_id:
        run_page(path, state.last_seq, run_id)
    else:
        list_page(path, state.last_seq)


ui.guarded(body)
