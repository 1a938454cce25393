"""Every error options-helper raises on purpose, under one root.

    OptionsHelperError                               exit code
    ├── ConfigError (ValueError)                  3  bad or unreadable configuration
    ├── UsageError (ValueError)                   2  a bad argument: unknown job, bad date, not a session
    │   └── NotASessionError                         a date that is not an XNYS session
    ├── LedgerError                               4
    │   ├── DatabaseNotFoundError (FileNotFoundError)
    │   ├── ReadOnlyLedgerError                      a write (append, run, reap, rebuild) on a read-only open
    │   ├── CorruptDatabaseError                  5  not a DuckDB file, or a damaged one
    │   ├── MigrationError                        5  a changed checksum, or a schema newer than the code
    │   │   └── SchemaMissingError                   a table or schema the code needs is not in the file
    │   ├── EventSchemaError                      5  the log holds what this code cannot read
    │   │   ├── UnknownEventTypeError (LookupError)  an event type the code does not know
    │   │   └── MissingUpcasterError                 no upcaster from a stored schema version
    │   ├── StorageError (OSError)               12  the file system refused: the database cannot be opened or written
    │   │   ├── DatabasePermissionError (PermissionError)   no read or write permission, a read-only file system
    │   │   ├── DatabaseIsADirectoryError (IsADirectoryError)
    │   │   ├── DiskFullError                        no space left for the file or its write-ahead log
    │   │   └── CommitFailedError                    the commit failed for another I/O reason; nothing was written
    │   ├── LedgerLockedError (TransientError)    6  another process holds the file past the retry budget
    │   ├── LedgerMemoryError (MemoryError)          DuckDB ran out of memory in a ledger transaction
    │   ├── ConflictError                            the log is not as the append expects: an expected seq,
    │   │   │                                        a run state that does not hold, a duplicate event id
    │   │   └── ConstraintViolationError             the database refused a row that collides with a stored one
    │   ├── InvalidEventError (ValueError)           an event that cannot be stored as it is
    │   │   ├── PayloadNotJSONError (TypeError)      a payload value JSON cannot hold (an object, NaN, inf)
    │   │   └── InvalidUnicodeError (UnicodeError)   text that is not valid Unicode (undecodable bytes)
    │   ├── UnknownRunError (LookupError)
    │   └── IntegrityError                        7  `db verify` found a broken chain or drifted projection
    ├── ProviderError                             8
    │   ├── TransientProviderError (TransientError)   429, 5xx, timeouts: retried, then raised
    │   └── TerminalProviderError                     401/403/404/422, malformed payloads
    │       ├── AuthenticationError
    │       ├── SymbolNotFoundError (LookupError)
    │       ├── UnsupportedDatasetError          e.g. a past session's chain from a live-only source
    │       └── MalformedResponseError
    ├── StageError                                9  a stage or job could not produce its partition
    ├── MissingExtraError (ImportError)          10  an optional extra is not installed
    ├── GapsFoundError                           11  `gaps --check` found cells to fix
    ├── PortfolioError (ValueError)              13  a portfolio.json that cannot be used (nothing is written)
    │   ├── PortfolioNotFoundError (FileNotFoundError)   the named portfolio file does not exist
    │   └── InvalidPortfolioError                    a bad field: names the position and the field
    ├── LineageExportError                       14  `lineage export`: the endpoint refused an event or was unreachable
    └── Interrupted                             130  Ctrl-C

``TransientError`` is a mixin marking errors that a retry may cure. Messages say what to do next.
The builtin in parentheses is a second base, so a caller may catch ``OSError``, ``ValueError``...
The CLI's exit code is the class's ``exit_code`` (docs/cli.md lists them); nothing else sets one.
DuckDB's own exceptions are mapped onto this tree in one place, ``ledger.transaction``.
"""

from __future__ import annotations


class OptionsHelperError(Exception):
    """Root of every error options-helper raises on purpose."""

    exit_code: int = 1


class TransientError(OptionsHelperError):
    """A failure that a later attempt may not have (locks, rate limits, 5xx)."""


class ConfigError(OptionsHelperError, ValueError):
    exit_code = 3


class UsageError(OptionsHelperError, ValueError):
    exit_code = 2


class NotASessionError(UsageError):
    """A date that is not an XNYS trading session."""


class LedgerError(OptionsHelperError):
    exit_code = 4


class DatabaseNotFoundError(LedgerError, FileNotFoundError):
    pass


class ReadOnlyLedgerError(LedgerError):
    """A write asked of a ledger opened with ``read_only=True`` (the portal, ``health``, a follower)."""


class CorruptDatabaseError(LedgerError):
    exit_code = 5


class MigrationError(LedgerError):
    exit_code = 5


class SchemaMissingError(MigrationError):
    """A table or schema the code needs is not in the file (an unmigrated or foreign database)."""


class EventSchemaError(LedgerError):
    """The log holds an event this code cannot read (a newer database, or a missing upcaster)."""

    exit_code = 5


class UnknownEventTypeError(EventSchemaError, LookupError):
    pass


class MissingUpcasterError(EventSchemaError):
    pass


class StorageError(LedgerError, OSError):
    """The file system refused to open or write the database."""

    exit_code = 12


class DatabasePermissionError(StorageError, PermissionError):
    pass


class DatabaseIsADirectoryError(StorageError, IsADirectoryError):
    pass


class DiskFullError(StorageError):
    pass


class CommitFailedError(StorageError):
    """A COMMIT failed for an I/O reason other than space or permission; nothing was written."""


class LedgerLockedError(LedgerError, TransientError):
    exit_code = 6


class LedgerMemoryError(LedgerError, MemoryError):
    """DuckDB ran out of memory inside a ledger transaction; nothing of it was written."""


class ConflictError(LedgerError):
    """The log is not as the append expects (an expected seq, a run state, a duplicate event id)."""


class ConstraintViolationError(ConflictError):
    """The database refused a row that collides with a stored one (a key already there)."""


class InvalidEventError(LedgerError, ValueError):
    """An event that cannot be stored as it is; the caller must change it."""


class PayloadNotJSONError(InvalidEventError, TypeError):
    pass


class InvalidUnicodeError(InvalidEventError, UnicodeError):
    pass


class UnknownRunError(LedgerError, LookupError):
    pass


class IntegrityError(LedgerError):
    exit_code = 7


class ProviderError(OptionsHelperError):
    exit_code = 8


class TransientProviderError(ProviderError, TransientError):
    pass


class TerminalProviderError(ProviderError):
    pass


class AuthenticationError(TerminalProviderError):
    pass


class SymbolNotFoundError(TerminalProviderError, LookupError):
    pass


class UnsupportedDatasetError(TerminalProviderError):
    pass


class MalformedResponseError(TerminalProviderError):
    pass


class StageError(OptionsHelperError):
    exit_code = 9


# -- the portfolio file (stages.portfolio) ----------------------------------------------------------
class PortfolioError(OptionsHelperError, ValueError):
    """A portfolio file that cannot be used. Nothing is written when one is raised."""

    exit_code = 13


class PortfolioNotFoundError(PortfolioError, FileNotFoundError):
    """``--portfolio``, ``OPTIONS_HELPER_PORTFOLIO`` or the config file names a missing file."""


class InvalidPortfolioError(PortfolioError):
    """A portfolio file with a bad field; ``position`` and ``field`` say where (None: the top level)."""

    def __init__(self, message: str, *, path: str | None = None, position: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.position = position
        self.field = field


class MissingExtraError(OptionsHelperError, ImportError):
    exit_code = 10

    @classmethod
    def for_extra(cls, extra: str, module: str) -> MissingExtraError:
        return cls(
            f"the optional extra {extra!r} is not installed ({module} is missing); "
            f'install it with: pip install "options-helper[{extra}]"'
        )


class Interrupted(OptionsHelperError):
    """Ctrl-C, or SIGINT: the command stopped where it was (what was committed stays)."""

    exit_code = 130


class GapsFoundError(OptionsHelperError):
    """`gaps --check` found cells to fix (for cron and CI: not a failure of the command)."""

    exit_code = 11


class LineageExportError(OptionsHelperError):
    """`lineage export` could not send an event: the OpenLineage endpoint refused it or was
    unreachable. What was sent before it is saved in the export's cursor; a rerun continues."""

    exit_code = 14


# What each exit code means: the table of docs/cli.md (tests/cli/test_docs.py writes it from here,
# and tests/cli/test_exit_codes.py checks that it names exactly the codes of the classes above).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug: rerun with `--debug` for the traceback and report it)",
    2: "usage error: a bad option, date, symbol, or a date that is not a trading session",
    3: "configuration error (`options-helper.toml`, environment)",
    4: "ledger error: missing database, unknown run, a conflicting append, an event that cannot be stored",
    5: "the file is not a DuckDB database or is damaged, or its schema or events do not match the code",
    6: "the database stayed locked by another process beyond the retry budget",
    7: "`db verify` found a broken hash chain or a drifted projection",
    8: "market data provider error (credentials, rate limits past the budget, bad payloads)",
    9: "a stage or job failed (see `options-helper runs show RUN_ID`)",
    10: "an optional extra is not installed (the message gives the `pip install` command)",
    11: "`gaps --check` found cells to fix",
    12: "the file system refused the database: permission denied, a directory, a read-only file system, disk full",
    13: "the portfolio file cannot be used (missing, not JSON, or a bad field: the message names the position and field)",
    14: "`lineage export` could not send an event (the endpoint refused it or was unreachable; rerun to continue)",
    130: "interrupted",
}


__all__ = [
    "EXIT_CODES",
    "AuthenticationError",
    "CommitFailedError",
    "ConfigError",
    "ConflictError",
    "ConstraintViolationError",
    "CorruptDatabaseError",
    "DatabaseIsADirectoryError",
    "DatabaseNotFoundError",
    "DatabasePermissionError",
    "DiskFullError",
    "EventSchemaError",
    "GapsFoundError",
    "IntegrityError",
    "Interrupted",
    "InvalidEventError",
    "InvalidPortfolioError",
    "InvalidUnicodeError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerMemoryError",
    "LineageExportError",
    "MalformedResponseError",
    "MigrationError",
    "MissingExtraError",
    "MissingUpcasterError",
    "NotASessionError",
    "OptionsHelperError",
    "PayloadNotJSONError",
    "PortfolioError",
    "PortfolioNotFoundError",
    "ProviderError",
    "ReadOnlyLedgerError",
    "SchemaMissingError",
    "StageError",
    "StorageError",
    "SymbolNotFoundError",
    "TerminalProviderError",
    "TransientError",
    "TransientProviderError",
    "UnknownEventTypeError",
    "UnknownRunError",
    "UnsupportedDatasetError",
    "UsageError",
]
