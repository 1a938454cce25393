"""Configuration: one frozen ``Settings`` object, built once at the edge and passed down.

Precedence for every value: command-line flag > environment variable > ``options-helper.toml``
(in the working directory, or the file named by ``OPTIONS_HELPER_CONFIG``) > built-in default.

``get_duckdb_path()`` is the one place the database path is decided.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ledger.errors import ConfigError

T = TypeVar("T")

CONFIG_FILE_NAME = "options-helper.toml"
DEFAULT_DUCKDB_PATH = Path("data/warehouse/options.duckdb")
DEFAULT_DATA_ROOT = Path("data")
DEFAULT_WATCHLIST_NAME = "default"
# About eight liquid names: index ETFs and large caps with deep option markets.
DEFAULT_WATCHLIST: tuple[str, ...] = ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "TSLA")
PROVIDERS = ("synthetic", "alpaca")
# Flow compares a session's snapshot with the latest earlier one at most this many sessions back.
DEFAULT_FLOW_MAX_GAP_SESSIONS = 5
PORTFOLIO_ENV = "OPTIONS_HELPER_PORTFOLIO"
DEFAULT_PORTFOLIO_FILE = "portfolio.json"

# Every key the config file may hold, by table (None: the top level; [watchlists] names are the
# user's own). Any other key is refused with the nearest known one: a typo must not be ignored.
CONFIG_KEYS: dict[str | None, tuple[str, ...]] = {
    None: ("duckdb_path", "data_root", "provider", "portfolio", "ledger", "alpaca", "synthetic", "stages",
           "watchlists"),
    "ledger": ("lock_timeout_seconds", "lease_seconds"),
    "alpaca": ("key_id", "secret_key", "env_file", "stock_feed", "options_feed", "data_url", "trading_url", "paper",
               "retry_budget_seconds", "requests_per_second", "requests_per_minute"),
    "synthetic": ("seed",),
    "stages": ("session_close_delay_minutes", "expiry_horizon_days", "moneyness_band", "risk_free_rate",
               "flow_max_gap_sessions", "workers"),
}


def _expand(text: str | os.PathLike[str], what: str) -> Path:
    """``text`` as a path, a leading ``~`` or ``~user`` expanded (an unknown user is a ConfigError)."""
    try:
        return Path(text).expanduser()
    except RuntimeError as e:  # pathlib: "Could not determine home directory"
        raise ConfigError(f"{what} {str(text)!r} names a home directory that does not exist; write the full path") from e


def _config_file_path(environ: Mapping[str, str]) -> Path | None:
    named = environ.get("OPTIONS_HELPER_CONFIG")
    if named:
        path = _expand(named, "OPTIONS_HELPER_CONFIG")
        if not path.is_file():
            raise ConfigError(
                f"OPTIONS_HELPER_CONFIG names {path}, which does not exist; create it or unset the variable"
            )
        return path
    local = Path.cwd() / CONFIG_FILE_NAME
    return local if local.is_file() else None


def load_config_file(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The parsed config file as a dict, or ``{}`` when there is none."""
    env = os.environ if environ is None else environ
    path = _config_file_path(env)
    if path is None:
        return {}
    import tomllib  # here: most runs have no config file

    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text: {e}; save it as UTF-8") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}; fix the file or point OPTIONS_HELPER_CONFIG elsewhere") from e
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from e
    _refuse_unknown_keys(data, path)
    data["__path__"] = str(path)
    return data


def _refuse_unknown_keys(data: Mapping[str, Any], path: Path) -> None:
    for section, known in CONFIG_KEYS.items():
        table = data if section is None else data.get(section)
        if not isinstance(table, Mapping):
            continue  # a section that is not a table is refused where it is read
        for key in table:
            if key not in known:
                import difflib  # here: only a refused key needs it

                where = "at the top level" if section is None else f"in [{section}]"
                near = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise ConfigError(f"unknown key {key!r} {where} of {path}; {hint}known: {', '.join(known)}")


def get_duckdb_path(
    flag: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """The database path: ``--duckdb-path`` > ``OPTIONS_HELPER_DUCKDB_PATH`` > config file > default."""
    env = os.environ if environ is None else environ
    if flag:
        return _expand(flag, "--duckdb-path")
    if env.get("OPTIONS_HELPER_DUCKDB_PATH"):
        return _expand(env["OPTIONS_HELPER_DUCKDB_PATH"], "OPTIONS_HELPER_DUCKDB_PATH")
    cfg = load_config_file(env) if config is None else config
    value = cfg.get("duckdb_path")
    if value is not None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"duckdb_path in {cfg.get('__path__', CONFIG_FILE_NAME)} must be a non-empty string")
        return _expand(value, "duckdb_path")
    return DEFAULT_DUCKDB_PATH


def get_portfolio_path(
    flag: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Path | None:
    """The portfolio file: ``--portfolio`` > ``OPTIONS_HELPER_PORTFOLIO`` > ``portfolio = "..."`` in
    the config file > ``./portfolio.json`` when it exists > None (no portfolio, a normal state).

    A file named by the flag, the environment or the config file is returned even when missing
    (reading it then says so); only the implicit ``./portfolio.json`` is optional."""
    env = os.environ if environ is None else environ
    if flag:
        return Path(flag).expanduser()
    if env.get(PORTFOLIO_ENV):
        return Path(env[PORTFOLIO_ENV]).expanduser()
    cfg = load_config_file(env) if config is None else config
    named = _path_text(cfg, "portfolio")
    if named is not None:
        return Path(named).expanduser()
    local = (cwd or Path.cwd()) / DEFAULT_PORTFOLIO_FILE
    return Path(DEFAULT_PORTFOLIO_FILE) if local.is_file() else None


@attrs.frozen(kw_only=True)
class AlpacaSettings:
    """Where the Alpaca keys come from and which feeds to ask. Never holds the key values."""

    stock_feed: str = "iex"
    options_feed: str = "indicative"
    env_file: Path | None = None
    data_url: str | None = None
    trading_url: str | None = None
    paper: bool = True
    retry_budget_seconds: float = 30.0
    requests_per_second: float = 3.0
    requests_per_minute: float = 200.0


@attrs.frozen(kw_only=True)
class Settings:
    """Everything a command needs, resolved once. Passed down, never global."""

    duckdb_path: Path = DEFAULT_DUCKDB_PATH
    data_root: Path = DEFAULT_DATA_ROOT
    provider: str = "synthetic"
    synthetic_seed: int = 7
    watchlists: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=lambda: {DEFAULT_WATCHLIST_NAME: DEFAULT_WATCHLIST}
    )
    lock_timeout_seconds: float = 60.0
    lease_seconds: float = 300.0
    session_close_delay_minutes: int = 30
    expiry_horizon_days: int = 120
    moneyness_band: float = 0.2
    risk_free_rate: float = 0.04
    # Flow for a session compares with the latest earlier snapshot at most this many sessions back.
    flow_max_gap_sessions: int = DEFAULT_FLOW_MAX_GAP_SESSIONS
    # Processes computing a stage's symbols (stages.parallel): 0 = one per CPU, 1 = in the runner.
    workers: int = 0
    alpaca: AlpacaSettings = attrs.field(factory=AlpacaSettings)
    config_path: Path | None = None
    # The portfolio file (stages.portfolio), see ``get_portfolio_path``; None: no portfolio.
    portfolio: Path | None = None

    def watchlist(self, name: str = DEFAULT_WATCHLIST_NAME) -> tuple[str, ...]:
        try:
            return self.watchlists[name]
        except KeyError:
            known = ", ".join(sorted(self.watchlists)) or "(none)"
            raise ConfigError(
                f"unknown watchlist {name!r}; known: {known}. Add it under [watchlists] in {CONFIG_FILE_NAME}"
            ) from None


def _float(cfg: Mapping[str, Any], key: str, default: float) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key} must be a positive number, got {value!r}")
    return float(value)


def _env_number(env: Mapping[str, str], name: str, parse: Callable[[str], T], expects: str) -> T | None:
    """The environment variable ``name`` parsed, None when unset or empty."""
    text = env.get(name)
    if not text:
        return None
    try:
        return parse(text)
    except ValueError as e:
        raise ConfigError(f"{name} must be {expects}, got {text!r}") from e


def _int(cfg: Mapping[str, Any], key: str, default: int) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def _text(cfg: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = cfg.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    return value


def _bool(cfg: Mapping[str, Any], key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _path_text(cfg: Mapping[str, Any], key: str) -> str | None:
    value = cfg.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a path string, got {value!r}")
    return value


def _watchlists(raw: Any) -> dict[str, tuple[str, ...]]:
    lists: dict[str, tuple[str, ...]] = {DEFAULT_WATCHLIST_NAME: DEFAULT_WATCHLIST}
    if raw is None:
        return lists
    if not isinstance(raw, Mapping):
        raise ConfigError("[watchlists] must be a table of name = [\"SYM\", ...]")
    for name, symbols in raw.items():
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise ConfigError(f"watchlist {name!r} must be a list of ticker strings")
        lists[str(name)] = tuple(sorted({s.strip().upper() for s in symbols if s.strip()}))
    return lists


def load_settings(
    *,
    duckdb_path: str | os.PathLike[str] | None = None,
    provider: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    portfolio: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the one ``Settings`` object from flags, environment and the config file."""
    env = os.environ if environ is None else environ
    cfg = load_config_file(env)
    ledger_cfg = cfg.get("ledger", {}) or {}
    alpaca_cfg = cfg.get("alpaca", {}) or {}
    synthetic_cfg = cfg.get("synthetic", {}) or {}
    stages_cfg = cfg.get("stages", {}) or {}
    for section, value in (("ledger", ledger_cfg), ("alpaca", alpaca_cfg), ("synthetic", synthetic_cfg), ("stages", stages_cfg)):
        if not isinstance(value, Mapping):
            raise ConfigError(f"[{section}] in the config file must be a table")

    chosen_provider = provider or env.get("OPTIONS_HELPER_PROVIDER") or cfg.get("provider", "synthetic")
    if chosen_provider not in PROVIDERS:
        raise ConfigError(f"unknown provider {chosen_provider!r}; choose one of: {', '.join(PROVIDERS)}")

    root = data_root or env.get("OPTIONS_HELPER_DATA_ROOT") or _path_text(cfg, "data_root") or DEFAULT_DATA_ROOT
    env_file = env.get("OPTIONS_HELPER_ALPACA_ENV_FILE") or _path_text(alpaca_cfg, "env_file")
    alpaca = AlpacaSettings(
        stock_feed=str(env.get("OPTIONS_HELPER_STOCK_FEED") or _text(alpaca_cfg, "stock_feed", "iex")),
        options_feed=str(env.get("OPTIONS_HELPER_OPTIONS_FEED") or _text(alpaca_cfg, "options_feed", "indicative")),
        env_file=_expand(env_file, "env_file") if env_file else None,
        data_url=env.get("APCA_API_DATA_URL") or _text(alpaca_cfg, "data_url", None),
        trading_url=env.get("APCA_API_BASE_URL") or _text(alpaca_cfg, "trading_url", None),
        paper=_bool(alpaca_cfg, "paper", True),
        retry_budget_seconds=_float(alpaca_cfg, "retry_budget_seconds", 30.0),
        requests_per_second=_float(alpaca_cfg, "requests_per_second", 3.0),
        requests_per_minute=_float(alpaca_cfg, "requests_per_minute", 200.0),
    )
    lock_timeout = _env_number(env, "OPTIONS_HELPER_LOCK_TIMEOUT", float, "a number of seconds")
    if lock_timeout is None:
        lock_timeout = _float(ledger_cfg, "lock_timeout_seconds", 60.0)
    if not math.isfinite(lock_timeout) or lock_timeout <= 0:
        raise ConfigError(f"the lock timeout must be a positive number of seconds, got {lock_timeout!r}")
    rate = stages_cfg.get("risk_free_rate", 0.04)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise ConfigError(f"risk_free_rate must be a number such as 0.04, got {rate!r}")
    band = stages_cfg.get("moneyness_band", 0.2)
    if isinstance(band, bool) or not isinstance(band, int | float) or not 0 < band <= 1:
        raise ConfigError(f"moneyness_band must be in (0, 1], got {band!r}")
    max_gap = _int(stages_cfg, "flow_max_gap_sessions", DEFAULT_FLOW_MAX_GAP_SESSIONS)
    if max_gap < 1:
        raise ConfigError(f"flow_max_gap_sessions must be at least 1 (1: the previous session only), got {max_gap!r}")
    workers = _env_number(env, "OPTIONS_HELPER_WORKERS", int, "a whole number (0: one per CPU)")
    if workers is None:
        workers = _int(stages_cfg, "workers", 0)
    if workers < 0:
        raise ConfigError(f"workers must be 0 (one per CPU) or more, got {workers!r}")
    return Settings(
        duckdb_path=get_duckdb_path(duckdb_path, environ=env, config=cfg),
        data_root=_expand(root, "data_root"),
        provider=chosen_provider,
        synthetic_seed=_int(synthetic_cfg, "seed", 7),
        watchlists=_watchlists(cfg.get("watchlists")),
        lock_timeout_seconds=lock_timeout,
        lease_seconds=_float(ledger_cfg, "lease_seconds", 300.0),
        session_close_delay_minutes=_int(stages_cfg, "session_close_delay_minutes", 30),
        expiry_horizon_days=_int(stages_cfg, "expiry_horizon_days", 120),
        moneyness_band=float(band),
        risk_free_rate=float(rate),
        flow_max_gap_sessions=max_gap,
        workers=workers,
        alpaca=alpaca,
        config_path=Path(cfg["__path__"]) if "__path__" in cfg else None,
        portfolio=get_portfolio_path(portfolio, environ=env, config=cfg),
    )


__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_DUCKDB_PATH",
    "DEFAULT_FLOW_MAX_GAP_SESSIONS",
    "DEFAULT_PORTFOLIO_FILE",
    "DEFAULT_WATCHLIST",
    "PORTFOLIO_ENV",
    "AlpacaSettings",
    "Settings",
    "get_duckdb_path",
    "get_portfolio_path",
    "load_config_file",
    "load_settings",
]
