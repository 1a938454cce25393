"""The config file and environment: ``load_settings`` gives exactly the Settings that the rules below
(written out here, apart from ledger/config.py) say, or a ConfigError naming one of the bad inputs."""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.config import Settings, load_settings
from ledger.errors import ConfigError
from tests.fuzz._util import FUZZ

KEYS = {
    None: ["duckdb_path", "data_root", "provider", "x"],
    "ledger": ["lock_timeout_seconds", "lease_seconds", "x"],
    "alpaca": ["stock_feed", "options_feed", "env_file", "data_url", "trading_url", "paper", "retry_budget_seconds",
               "requests_per_second", "requests_per_minute"],
    "synthetic": ["seed"],
    "stages": ["session_close_delay_minutes", "expiry_horizon_days", "moneyness_band", "risk_free_rate",
               "flow_max_gap_sessions"],
    "watchlists": ["default", "tech", "x y"],
}
TOML_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str), st.floats(allow_nan=True).map(lambda f: "nan" if math.isnan(f) else
                                                                             ("inf" if f == math.inf else ("-inf" if f == -math.inf else repr(f)))),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                             .replace("\r", "\\r").replace("\t", "\\t") + '"'),
    st.just("1979-05-27"), st.just("[]"), st.just('["SPY", "aapl", " "]'), st.just("[1, 2]"), st.just("{}"),
)


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    lines = []
    for section, keys in KEYS.items():
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
        if not chosen:
            continue
        if section is not None:
            lines.append(f"[{section}]")
        for key in chosen:
            name = f'"{key}"' if " " in key else key
            lines.append(f"{name} = {draw(TOML_SCALARS)}")
    return "\n".join(lines) + "\n"


# -- the rules, written out independently of ledger/config.py --------------------------------------
def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive(v: Any) -> bool:
    return _number(v) and math.isfinite(v) and v > 0


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _home(v: str) -> bool:
    """A leading ``~`` or ``~/`` is the home directory; ``~name`` must name a known user."""
    return not v.startswith("~") or os.path.expanduser(v) != v


def _path(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip()) and _home(v)


def _expand(v: str) -> Path:
    return Path(os.path.expanduser(v))


# (section, key) -> (is the value valid, the Settings attribute it sets, how the value is stored)
RULES: dict[tuple[str | None, str], tuple[Callable[[Any], bool], str, Callable[[Any], Any]]] = {
    (None, "duckdb_path"): (_path, "duckdb_path", _expand),
    (None, "data_root"): (_path, "data_root", _expand),
    (None, "provider"): (lambda v: v in ("synthetic", "alpaca"), "provider", str),
    ("ledger", "lock_timeout_seconds"): (_positive, "lock_timeout_seconds", float),
    ("ledger", "lease_seconds"): (_positive, "lease_seconds", float),
    ("alpaca", "stock_feed"): (lambda v: isinstance(v, str), "alpaca.stock_feed", str),
    ("alpaca", "options_feed"): (lambda v: isinstance(v, str), "alpaca.options_feed", str),
    ("alpaca", "env_file"): (_path, "alpaca.env_file", _expand),
    ("alpaca", "data_url"): (lambda v: isinstance(v, str), "alpaca.data_url", str),
    ("alpaca", "trading_url"): (lambda v: isinstance(v, str), "alpaca.trading_url", str),
    ("alpaca", "paper"): (lambda v: isinstance(v, bool), "alpaca.paper", bool),
    ("alpaca", "retry_budget_seconds"): (_positive, "alpaca.retry_budget_seconds", float),
    ("alpaca", "requests_per_second"): (_positive, "alpaca.requests_per_second", float),
    ("alpaca", "requests_per_minute"): (_positive, "alpaca.requests_per_minute", float),
    ("synthetic", "seed"): (_count, "synthetic_seed", int),
    ("stages", "session_close_delay_minutes"): (_count, "session_close_delay_minutes", int),
    ("stages", "expiry_horizon_days"): (_count, "expiry_horizon_days", int),
    ("stages", "moneyness_band"): (lambda v: _number(v) and 0 < v <= 1, "moneyness_band", float),
    ("stages", "risk_free_rate"): (lambda v: _number(v) and math.isfinite(v), "risk_free_rate", float),
    ("stages", "flow_max_gap_sessions"): (lambda v: _count(v) and v >= 1, "flow_max_gap_sessions", int),
}
SECTIONS = {"ledger", "alpaca", "synthetic", "stages", "watchlists"}
# Environment variables that win over the file: (the file key they hide, the attribute, parse or None).
ENV_RULES = {
    "OPTIONS_HELPER_DUCKDB_PATH": ((None, "duckdb_path"), "duckdb_path", None),
    "OPTIONS_HELPER_DATA_ROOT": ((None, "data_root"), "data_root", None),
    "OPTIONS_HELPER_PROVIDER": ((None, "provider"), "provider", None),
    "OPTIONS_HELPER_LOCK_TIMEOUT": (("ledger", "lock_timeout_seconds"), "lock_timeout_seconds", None),
    "OPTIONS_HELPER_STOCK_FEED": (("alpaca", "stock_feed"), "alpaca.stock_feed", None),
    "APCA_API_DATA_URL": (("alpaca", "data_url"), "alpaca.data_url", None),
}


def _env_value(name: str, text: str) -> tuple[bool, Any]:
    """(valid, value) for a non-empty environment variable."""
    if name in ("OPTIONS_HELPER_DUCKDB_PATH", "OPTIONS_HELPER_DATA_ROOT"):
        return _home(text), _expand(text)
    if name == "OPTIONS_HELPER_PROVIDER":
        return text in ("synthetic", "alpaca"), text
    if name == "OPTIONS_HELPER_LOCK_TIMEOUT":
        try:
            value = float(text)
        except ValueError:
            return False, None
        return _positive(value), value
    return True, text


def expected(doc: dict[str, Any], env: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    """The Settings attributes the inputs set, and the names of the invalid inputs (any one of which
    the ConfigError must name); an empty set means load_settings must succeed."""
    want: dict[str, Any] = {}
    bad: set[str] = set()
    for section in (None, "ledger", "alpaca", "synthetic", "stages"):  # any other key is a typo
        table = doc if section is None else doc.get(section, {})
        bad |= {key for key in table if (section, key) not in RULES and not (section is None and key in SECTIONS)}
    hidden = {ENV_RULES[n][0] for n, t in env.items() if t}
    for (section, key), (valid, attr, store) in RULES.items():
        table = doc if section is None else doc.get(section, {})
        if key not in table or (section, key) in hidden:
            continue
        if valid(table[key]):
            want[attr] = store(table[key])
        else:
            bad.add(key)
    for name, text in env.items():
        if text:
            ok, value = _env_value(name, text)
            if ok:
                want[ENV_RULES[name][1]] = value
            else:
                bad |= {name, ENV_RULES[name][0][1]} | ({"lock timeout"} if "LOCK" in name else set())
    for name, symbols in doc.get("watchlists", {}).items():
        if isinstance(symbols, list) and all(isinstance(s, str) for s in symbols):
            want[f"watchlists.{name}"] = tuple(sorted({s.strip().upper() for s in symbols if s.strip()}))
        else:
            bad.add(f"watchlist {name!r}")
    return want, bad


def _attr(settings: Settings, name: str) -> Any:
    if name.startswith("watchlists."):
        return settings.watchlists[name.removeprefix("watchlists.")]
    obj: Any = settings
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _load(tmp_path, text: str | bytes, env: dict[str, str] | None = None) -> None:
    """Load ``text`` as the config file under ``env``: exactly the expected Settings, or a ConfigError
    naming one of the invalid inputs (a file that is not UTF-8 TOML: naming the file)."""
    env = env or {}
    path = tmp_path / "options-helper.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass"))
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        with pytest.raises(ConfigError, match=r"is not (UTF-8 text|valid TOML)"):
            load_settings(environ={"OPTIONS_HELPER_CONFIG": str(path), **env})
        return
    want, bad = expected(doc, env)
    if bad:
        with pytest.raises(ConfigError) as caught:
            load_settings(environ={"OPTIONS_HELPER_CONFIG": str(path), **env})
        assert any(name in str(caught.value) for name in bad), (bad, str(caught.value))
        return
    settings = load_settings(environ={"OPTIONS_HELPER_CONFIG": str(path), **env})
    got = {name: _attr(settings, name) for name in want}
    assert got == want
    assert settings.config_path == path


@FUZZ
@given(toml_documents())
@example('[stages]\nrisk_free_rate = "abc"\n')
@example('provider = ""\n')
@example('[alpaca]\npaper = "false"\nstock_feed = 5\n')
@example('data_root = "~nosuchuser/data"\n')
def test_random_config_files_load_or_raise_config_error(tmp_path_factory, text):
    _load(tmp_path_factory.mktemp("cfg"), text)


@FUZZ
@given(st.binary(max_size=200))
@example(b"\xff\xfe = 1")
def test_random_bytes_as_config_raise_config_error(tmp_path_factory, data):
    _load(tmp_path_factory.mktemp("cfg"), data)


@FUZZ
@given(st.dictionaries(st.sampled_from(["OPTIONS_HELPER_LOCK_TIMEOUT", "OPTIONS_HELPER_PROVIDER",
                                        "OPTIONS_HELPER_DUCKDB_PATH", "OPTIONS_HELPER_DATA_ROOT",
                                        "OPTIONS_HELPER_STOCK_FEED", "APCA_API_DATA_URL"]),
                       st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                               max_size=12), max_size=4))
@example({"OPTIONS_HELPER_DUCKDB_PATH": "~nosuchuser"})
@example({"OPTIONS_HELPER_LOCK_TIMEOUT": "1_0"})
def test_random_environment_loads_or_raises_config_error(tmp_path_factory, env):
    _load(tmp_path_factory.mktemp("cfg"), "", env)


@pytest.mark.parametrize("text", ['[stages]\nrisk_free_rate = "abc"\n', "data_root = 5\n",
                                  '[alpaca]\nenv_file = 5\n'])
def test_wrongly_typed_values_are_config_errors(tmp_path, text):
    _load(tmp_path, text)


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_a_nonsense_lock_timeout_is_refused(tmp_path, value):
    """OPTIONS_HELPER_LOCK_TIMEOUT must be a positive finite number of seconds."""
    with pytest.raises(ConfigError, match="lock timeout must be a positive number"):
        load_settings(environ={"OPTIONS_HELPER_CONFIG": str(_empty(tmp_path)), "OPTIONS_HELPER_LOCK_TIMEOUT": value})


def _empty(tmp_path):
    p = tmp_path / "empty.toml"
    p.write_text("")
    return p


def test_a_misspelt_key_is_refused_with_the_nearest_known_one(tmp_path: Path) -> None:
    path = tmp_path / "options-helper.toml"
    path.write_text("[stages]\nworker = 2\n")
    with pytest.raises(ConfigError, match=r"unknown key 'worker' in \[stages\].*did you mean 'workers'\?"):
        load_settings(environ={"OPTIONS_HELPER_CONFIG": str(path)})
    path.write_text('duckdb_pth = "x.duckdb"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'duckdb_pth' at the top level.*did you mean 'duckdb_path'\?"):
        load_settings(environ={"OPTIONS_HELPER_CONFIG": str(path)})
