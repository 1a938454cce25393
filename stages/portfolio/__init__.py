"""The portfolio: the older tool's ``portfolio.json`` (single- and multi-leg option positions),
valued from the session's own chain snapshot, with Greeks exposure and a stress table.

    from stages import portfolio
    loaded = portfolio.load_portfolio("portfolio.json")          # or portfolio.from_settings(settings)
    report = portfolio.show(settings, as_of=None)                # the latest session with snapshots
    report.to_dict()   # {path, sha256, as_of, positions, exposure, stress, notes}

Modules: ``model`` (the file's types), ``load`` (reading it), ``market`` (which stored snapshots
to read), ``valuation`` (marks, P&L, Greeks), ``stress`` (full repricing), ``report`` (what the
frontends render). See docs/portfolio.md.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from stages.portfolio.load import LoadedPortfolio, from_settings, load_portfolio
from stages.portfolio.model import Leg, MultiLegPosition, Portfolio, SingleLegPosition

if TYPE_CHECKING:
    from ledger.config import Settings
    from stages.portfolio.report import PortfolioReport


def universe_symbols(settings: Settings) -> tuple[str, ...]:
    """The configured portfolio's underlyings (empty without a portfolio)."""
    loaded = from_settings(settings)
    return loaded.symbols if loaded else ()


def report_for(loaded: LoadedPortfolio | None, reader: Any, *, as_of: dt.date | None, data_root: Any,
               rate: float) -> PortfolioReport:
    """The report of ``loaded`` on ``as_of`` (None: the latest session with a stored snapshot of
    its underlyings); ``reader(fn)`` runs ``fn`` on a short read-only ledger connection."""
    from stages.portfolio.market import latest_session, snapshot_refs
    from stages.portfolio.report import PortfolioReport, build_report

    if loaded is None:
        return PortfolioReport.none(as_of)

    def refs(con: Any) -> Any:
        day = as_of or latest_session(con, loaded.portfolio)
        return None if day is None else snapshot_refs(con, loaded.portfolio, day)

    return build_report(loaded, reader(refs), data_root=data_root, rate=rate)


def show(settings: Settings, *, as_of: dt.date | None = None, loaded: LoadedPortfolio | None = None) -> PortfolioReport:
    """``portfolio show``: the configured (or given) portfolio valued from the stored snapshots,
    reading the ledger's data tables with short read-only connections."""
    from pathlib import Path

    from ledger.connection import connect
    from ledger.errors import DatabaseNotFoundError

    chosen = loaded if loaded is not None else from_settings(settings)
    if chosen is None:
        return report_for(None, None, as_of=as_of, data_root=settings.data_root, rate=settings.risk_free_rate)
    if not Path(settings.duckdb_path).exists():
        raise DatabaseNotFoundError(f"no database at {settings.duckdb_path}; run the pipeline first "
                                    "(`options-helper daily`), or point --duckdb-path at the ledger")

    def reader(fn: Any) -> Any:  # read-only, per call: never migrates or writes
        with connect(settings.duckdb_path, read_only=True, timeout_seconds=settings.lock_timeout_seconds) as con:
            return fn(con)

    return report_for(chosen, reader, as_of=as_of, data_root=settings.data_root, rate=settings.risk_free_rate)


__all__ = ["Leg", "LoadedPortfolio", "MultiLegPosition", "Portfolio", "SingleLegPosition", "from_settings",
           "load_portfolio", "report_for", "show", "universe_symbols"]
