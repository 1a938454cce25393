"""Where the portfolio's quotes come from: the stored chain snapshots, never a live quote.

``snapshot_refs`` asks the data tables (``options_snapshot_files``, through ``stages.datastore``)
which Parquet files hold the session's chain of each underlying, and, for legs that expired
before the session, the last snapshot on or before their expiry. ``read_quotes`` then reads just
the columns and expiries the legs need from those files (no database connection held).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from stages import datastore
from stages.portfolio.model import Portfolio
from stages.portfolio.valuation import QUOTE_COLUMNS, needed_expiries


@attrs.frozen(kw_only=True)
class SnapshotRefs:
    """The snapshot files to read: ``session`` (the session's, per symbol) and ``expired`` (the
    last on or before an expired leg's expiry); ``needed`` the expiries per symbol."""

    as_of: dt.date
    session: tuple[dict[str, Any], ...]
    expired: tuple[dict[str, Any], ...]
    needed: dict[str, set[dt.date]]

    @property
    def missing_symbols(self) -> tuple[str, ...]:
        """Underlyings with legs still live on the session but no snapshot of it."""
        have = {r["symbol"] for r in self.session}
        return tuple(s for s, expiries in self.needed.items()
                     if s not in have and any(e >= self.as_of for e in expiries))


def snapshot_refs(con: Any, portfolio: Portfolio, as_of: dt.date) -> SnapshotRefs:
    """The file rows the valuation of ``portfolio`` on ``as_of`` reads (one short read)."""
    needed = needed_expiries(portfolio)
    session = datastore.snapshot_files(con, needed, [as_of]) if needed else []
    past = [(symbol, expiry) for symbol, expiries in needed.items() for expiry in expiries if expiry < as_of]
    expired = datastore.latest_snapshot_files(con, past) if past else []
    return SnapshotRefs(as_of=as_of, session=tuple(session), expired=tuple(expired), needed=needed)


def sessions(con: Any, portfolio: Portfolio) -> list[dt.date]:
    """The sessions with a stored snapshot of any of the portfolio's underlyings, newest first."""
    return datastore.snapshot_sessions(con, portfolio.symbols) if portfolio.symbols else []


def latest_session(con: Any, portfolio: Portfolio) -> dt.date | None:
    """The newest session with a stored snapshot of any of the portfolio's underlyings."""
    found = sessions(con, portfolio)
    return found[0] if found else None


def _read(data_root: Path, row: dict[str, Any], expiries: set[dt.date]) -> pa.Table:
    import pyarrow.parquet as pq

    from stages.jobs import _files

    path = _files.resolve(data_root, row["path"], run_id=row["run_id"], size=int(row["bytes"]))
    # One small file per symbol: a plain single-threaded read costs least (no dataset machinery).
    table = pq.ParquetFile(path).read(columns=list(QUOTE_COLUMNS), use_threads=False)
    return table.filter(pc.is_in(table["expiry"], pa.array(sorted(expiries), pa.date32())))


def read_quotes(data_root: str | Path, refs: SnapshotRefs) -> pa.Table:
    """The snapshot rows of the legs' expiries from every referenced file, as one Arrow table."""
    root = Path(data_root)
    tables = [_read(root, row, refs.needed[row["symbol"]]) for row in refs.session]
    tables += [_read(root, row, {row["wanted"]}) for row in refs.expired]
    if not tables:
        from stages.analytics.snapshot import SNAPSHOT_SCHEMA

        return SNAPSHOT_SCHEMA.empty_table().select(list(QUOTE_COLUMNS))
    return pa.concat_tables(tables, promote_options="permissive")


def session_spots(refs: SnapshotRefs) -> dict[str, float]:
    """Each underlying's spot recorded with its snapshot of the session."""
    return {r["symbol"]: float(r["spot"]) for r in refs.session if r.get("spot") is not None}


__all__ = ["SnapshotRefs", "latest_session", "read_quotes", "session_spots", "sessions", "snapshot_refs"]
