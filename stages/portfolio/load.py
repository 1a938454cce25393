"""Reading the portfolio file named by the settings (``Settings.portfolio``, see
``ledger.config.get_portfolio_path``): its bytes, their sha256 (the run's lineage) and the
validated ``Portfolio``. No portfolio configured is a normal state: ``from_settings`` returns None.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ledger.errors import PortfolioError, PortfolioNotFoundError
from stages.portfolio.model import Portfolio

if TYPE_CHECKING:
    from ledger.config import Settings


@attrs.frozen(kw_only=True)
class LoadedPortfolio:
    """A validated portfolio and the file it came from (``sha256`` of its exact bytes)."""

    portfolio: Portfolio
    path: Path
    sha256: str

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.portfolio.symbols

    def lineage(self) -> dict[str, Any]:
        """What a run records in its arguments: which portfolio file, byte for byte."""
        return {"path": str(self.path), "sha256": self.sha256, "positions": len(self.portfolio.positions)}


def load_portfolio(path: str | os.PathLike[str]) -> LoadedPortfolio:
    """Read and validate ``path``; ``PortfolioNotFoundError`` / ``InvalidPortfolioError`` otherwise."""
    target = Path(path)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise PortfolioNotFoundError(
            f"no portfolio file at {target}; create it (see docs/portfolio.md), or point --portfolio, "
            "OPTIONS_HELPER_PORTFOLIO or `portfolio = \"...\"` in options-helper.toml at the right file") from None
    except IsADirectoryError:
        raise PortfolioError(f"{target} is a directory, not a portfolio file; name the .json file") from None
    except OSError as e:
        raise PortfolioError(f"cannot read the portfolio file {target}: {e}") from e
    portfolio = Portfolio.from_json(data, source=str(target))
    return LoadedPortfolio(portfolio=portfolio, path=target, sha256=hashlib.sha256(data).hexdigest())


def from_settings(settings: Settings) -> LoadedPortfolio | None:
    """The configured portfolio, or None when there is none (a normal state)."""
    path = getattr(settings, "portfolio", None)
    return None if path is None else load_portfolio(path)


__all__ = ["LoadedPortfolio", "from_settings", "load_portfolio"]
