"""Streamlit helpers shared by the pages: settings, the sidebar, guidance, cached queries, errors.

Query results are cached for a short time keyed by the ledger's last seq, so a new commit shows at
once; connections are never cached (each query opens and closes its own, read-only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from frontends.portal import db, queries
from ledger.config import Settings, load_settings

CACHE_TTL_SECONDS = 30
DISCLAIMER = "Read-only view of the ledger. Informational use only; not financial advice."


def settings() -> Settings:
    """The one Settings object for this page run (flags reach the portal as environment variables)."""
    return load_settings()


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False, max_entries=512)
def _cached(name: str, path: str, seq: int, args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> Any:
    del seq  # part of the cache key only: a new commit is a new key
    return getattr(queries, name)(path, *args, **dict(kwargs))


def query(name: str, path: str, seq: int, *args: Any, **kwargs: Any) -> Any:
    """``queries.<name>(path, *args, **kwargs)``, cached while the ledger's head stays at ``seq``."""
    return _cached(name, path, seq, tuple(args), tuple(sorted(kwargs.items())))


def sidebar(s: Settings, state: db.DbState | None = None) -> None:
    with st.sidebar:
        st.caption("Ledger")
        st.code(str(s.duckdb_path), language=None)
        if state is not None and state.ready:
            st.caption(f"schema v{state.schema_version} · last seq {state.last_seq:,}")
        if st.button("Refresh", key="refresh", help="Read the ledger again (cached results expire after 30 s)."):
            _cached.clear()
        st.caption(DISCLAIMER)


def open_ledger(title: str) -> tuple[Settings, db.DbState]:
    """The page header and sidebar; shows guidance and stops the page when there is nothing to show."""
    st.title(title)
    s = settings()
    state = db.state(s.duckdb_path)
    sidebar(s, state)
    if not state.ready:
        guidance(state)
        st.stop()
    return s, state


def guidance(state: db.DbState) -> None:
    st.warning(state.guidance or f"Nothing to show for {state.path}.")
    if state.commands:
        st.code("\n".join(state.commands), language="bash")
    st.caption("The portal reads the database named by --duckdb-path, $OPTIONS_HELPER_DUCKDB_PATH or "
               "options-helper.toml; start it with `options-helper portal --duckdb-path PATH`.")


def guarded(body: Callable[[], None]) -> None:
    """Run a page body; an error becomes one readable message, never a traceback."""
    from ledger.errors import LedgerLockedError, OptionsHelperError

    try:
        body()
    except LedgerLockedError as e:
        st.warning(f"The ledger is busy (a writer holds it): {e}. Press Refresh in a moment.")
    except OptionsHelperError as e:
        st.error(str(e))
    except Exception as e:
        if type(e).__module__.startswith("streamlit"):
            raise  # st.stop / rerun control flow
        st.error(f"Could not render this page: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def run_link_column(label: str = "run") -> Any:
    return st.column_config.LinkColumn(label, display_text=r"run_id=(.*)$")


def with_run_links(df: pd.DataFrame, column: str = "run_id") -> pd.DataFrame:
    """Replace run ids by links to the run's page (the text shown stays the id)."""
    if column in df.columns and len(df):
        df = df.copy()
        df[column] = [f"./runs?run_id={r}" if r else None for r in df[column]]
    return df


_TONES = {"success": "#e8f5e9", "ok": "#e8f5e9", "current": "#e8f5e9", "pass": "#e8f5e9",
          "failed": "#ffebee", "fail": "#ffebee", "stale": "#ffebee", "error": "#ffebee",
          "abandoned": "#fff3e0", "behind": "#fff8e1", "warn": "#fff8e1", "started": "#e3f2fd"}


def tinted(df: pd.DataFrame, *columns: str) -> Any:
    """A Styler colouring status-like cells (success green, failed red, abandoned orange, ...)."""
    present = [c for c in columns if c in df.columns]
    if not present or not len(df) or len(df) > 60:  # a Styler costs ~1 ms a row to render
        return df
    return df.style.map(lambda v: f"background-color: {_TONES[v]}" if v in _TONES else "", subset=present)


def utc(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


__all__ = ["CACHE_TTL_SECONDS", "DISCLAIMER", "guarded", "guidance", "open_ledger", "query", "run_link_column",
           "settings", "sidebar", "tinted", "utc", "with_run_links"]
