"""Every error options-helper raises on purpose, under one root.

    OptionsHelperError
    ├── ConfigError (ValueError)                 bad or unreadable configuration
    ├── UsageError (ValueError)                  a bad argument: unknown job, bad date, not a session
    │   └── NotASessionError                     a date that is not an XNYS session
    ├── LedgerError
    │   ├── DatabaseNotFoundError (FileNotFoundError)
    │   ├── CorruptDatabaseError                 not a DuckDB file, or unreadable
    │   ├── MigrationError                       a changed checksum, or a schema newer than the code
    │   ├── LedgerLockedError (TransientError)   another process holds the write lock past the budget
    │   ├── ConflictError                        an append that collides (duplicate event id, bad state)
    │   ├── UnknownRunError (LookupError)
    │   └── IntegrityError                       `db verify` found a broken chain or drifted projection
    ├── ProviderError
    │   ├── TransientProviderError (TransientError)   429, 5xx, timeouts: retried, then raised
    │   └── TerminalProviderError                     401/403/404/422, malformed payloads
    │       ├── AuthenticationError
    │       ├── SymbolNotFoundError (LookupError)
    │       ├── UnsupportedDatasetError          e.g. a past session's chain from a live-only source
    │       └── MalformedResponseError
    ├── StageError                               a stage could not produce its partition
    ├── PortfolioError (ValueError)              a portfolio.json that cannot be used (exit 13; nothing is written)
    │   ├── PortfolioNotFoundError (FileNotFoundError)   the named portfolio file does not exist
    │   └── InvalidPortfolioError                a bad field: names the position and the field
    └── MissingExtraError (ImportError)          an optional extra is not installed

``TransientError`` is a mixin marking errors that a retry may cure. Messages say what to do next.
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


class CorruptDatabaseError(LedgerError):
    exit_code = 5


class MigrationError(LedgerError):
    exit_code = 5


class LedgerLockedError(LedgerError, TransientError):
    exit_code = 6


class ConflictError(LedgerError):
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


__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "CorruptDatabaseError",
    "DatabaseNotFoundError",
    "IntegrityError",
    "InvalidPortfolioError",
    "LedgerError",
    "LedgerLockedError",
    "MalformedResponseError",
    "MigrationError",
    "MissingExtraError",
    "NotASessionError",
    "OptionsHelperError",
    "PortfolioError",
    "PortfolioNotFoundError",
    "ProviderError",
    "StageError",
    "SymbolNotFoundError",
    "TerminalProviderError",
    "TransientError",
    "TransientProviderError",
    "UnknownRunError",
    "UnsupportedDatasetError",
    "UsageError",
]
