"""The portfolio as every frontend shows it: positions, exposure and stress for one session.

``build_report(loaded, refs, data_root, rate)`` reads the referenced snapshot files and values
the portfolio; ``PortfolioReport.to_dict()`` is the one JSON shape the CLI (``portfolio show
--json``), the briefing (``portfolio``) and the portal use:
``{path, sha256, as_of, positions: [...], exposure: {...}, stress: [...], notes: [...]}``.
No portfolio is a normal state: ``PortfolioReport.none()`` says so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import attrs

from stages.portfolio.load import LoadedPortfolio
from stages.portfolio.market import SnapshotRefs, read_quotes, session_spots
from stages.portfolio.stress import stress
from stages.portfolio.valuation import PortfolioValuation, position_rows, value_portfolio

NO_PORTFOLIO = ("no portfolio: pass --portfolio PATH, set OPTIONS_HELPER_PORTFOLIO or `portfolio = \"...\"` in "
                "options-helper.toml, or put a portfolio.json in the working directory (see docs/portfolio.md)")


@attrs.frozen(kw_only=True)
class PortfolioReport:
    """A valued portfolio (or the absence of one) for ``as_of``."""

    loaded: LoadedPortfolio | None
    as_of: dt.date | None
    valuation: PortfolioValuation | None = None
    stress: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def none(cls, as_of: dt.date | None = None) -> PortfolioReport:
        return cls(loaded=None, as_of=as_of, notes=(NO_PORTFOLIO,))

    @property
    def present(self) -> bool:
        return self.loaded is not None

    def to_dict(self) -> dict[str, Any]:
        loaded = self.loaded
        return {
            "path": str(loaded.path) if loaded else None,
            "sha256": loaded.sha256 if loaded else None,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "base_currency": loaded.portfolio.base_currency if loaded else None,
            "cash": loaded.portfolio.cash if loaded else None,
            "positions": position_rows(self.valuation) if self.valuation else [],
            "exposure": dict(self.valuation.exposure) if self.valuation else {},
            "stress": [dict(s) for s in self.stress],
            "notes": list(self.notes),
        }


def build_report(loaded: LoadedPortfolio | None, refs: SnapshotRefs | None, *, data_root: str | Path,
                 rate: float) -> PortfolioReport:
    """Value ``loaded`` from the snapshot files ``refs`` names (see ``market.snapshot_refs``)."""
    if loaded is None:
        return PortfolioReport.none(refs.as_of if refs else None)
    if refs is None:
        return PortfolioReport(loaded=loaded, as_of=None,
                               notes=("no stored option snapshot of the portfolio's underlyings; run "
                                      "`options-helper snapshot-options` first",))
    quotes = read_quotes(data_root, refs)
    valuation = value_portfolio(loaded.portfolio, quotes, as_of=refs.as_of, rate=rate, spots=session_spots(refs))
    notes = [f"no snapshot of {s} for {refs.as_of}: its legs are reported missing; run "
             f"`options-helper snapshot-options --as-of {refs.as_of} --symbols {s}`" for s in refs.missing_symbols]
    if not loaded.portfolio.positions:
        notes.append("the portfolio has no positions")
    return PortfolioReport(loaded=loaded, as_of=refs.as_of, valuation=valuation,
                           stress=tuple(stress(valuation.legs, rate)), notes=tuple(notes))


__all__ = ["NO_PORTFOLIO", "PortfolioReport", "build_report"]
