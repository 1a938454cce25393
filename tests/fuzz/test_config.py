"""The config file and environment: ``load_settings`` returns Settings or raises ConfigError,
whatever TOML or OPTIONS_HELPER_* values it is given (anything else is exit 1 in the CLI)."""

from __future__ import annotations

import contextlib
import math

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
    "stages": ["session_close_delay_minutes", "expiry_horizon_days", "moneyness_band", "risk_free_rate"],
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


def _load(tmp_path, text: str, env: dict[str, str] | None = None) -> None:
    path = tmp_path / "options-helper.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        s = load_settings(environ={"OPTIONS_HELPER_CONFIG": str(path), **(env or {})})
    except ConfigError:
        return
    assert isinstance(s, Settings)




@FUZZ
@given(toml_documents())
@example('[stages]\nrisk_free_rate = "abc"\n')
def test_random_config_files_load_or_raise_config_error(tmp_path_factory, text):
    _load(tmp_path_factory.mktemp("cfg"), text)


@FUZZ
@given(st.binary(max_size=200))
@example(b"\xff\xfe = 1")
def test_random_bytes_as_config_raise_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_settings(environ={"OPTIONS_HELPER_CONFIG": str(path)})


@FUZZ
@given(st.dictionaries(st.sampled_from(["OPTIONS_HELPER_LOCK_TIMEOUT", "OPTIONS_HELPER_PROVIDER",
                                        "OPTIONS_HELPER_DUCKDB_PATH", "OPTIONS_HELPER_DATA_ROOT",
                                        "OPTIONS_HELPER_STOCK_FEED", "APCA_API_DATA_URL"]),
                       st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                               max_size=12), max_size=4))
def test_random_environment_loads_or_raises_config_error(tmp_path_factory, env):
    _load(tmp_path_factory.mktemp("cfg"), "", env)


@pytest.mark.parametrize("text", ['[stages]\nrisk_free_rate = "abc"\n', "data_root = 5\n",
                                  '[alpaca]\nenv_file = 5\n'])
def test_wrongly_typed_values_are_config_errors(tmp_path, text):
    _load(tmp_path, text)


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_a_nonsense_lock_timeout_is_refused(tmp_path, value):
    """OPTIONS_HELPER_LOCK_TIMEOUT must be a positive finite number of seconds."""
    try:
        s = load_settings(environ={"OPTIONS_HELPER_CONFIG": str(_empty(tmp_path)), "OPTIONS_HELPER_LOCK_TIMEOUT": value})
    except ConfigError:
        return
    assert s.lock_timeout_seconds > 0 and math.isfinite(s.lock_timeout_seconds), value


def _empty(tmp_path):
    p = tmp_path / "empty.toml"
    p.write_text("")
    return p
