"""Where Alpaca keys come from, that they never print, and ``provider check``."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import attrs
import pytest
import typer
from typer.testing import CliRunner

from ledger.config import AlpacaSettings, Settings
from ledger.errors import AuthenticationError
from stages.providers import build_provider, check_provider
from stages.providers.credentials import (
    RedactingFilter,
    Secret,
    read_env_file,
    redact,
    resolve_credentials,
)
from tests.providers.fake_alpaca import KEY, SECRET, bar, contract


def test_secrets_do_not_print_or_pickle():
    s = Secret("super-secret-value")
    assert "super" not in repr(s) and "super" not in str(s) and "super" not in f"{s}"
    assert s.reveal() == "super-secret-value"
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_the_environment_wins_then_the_env_file_then_the_config_file(tmp_path: Path):
    env_file = tmp_path / "alpaca.env"
    env_file.write_text('# keys\nexport APCA_API_KEY_ID="file-key-1234"\nAPCA_API_SECRET_KEY=file-secret-5678 # c\n')
    config = tmp_path / "options-helper.toml"
    config.write_text('[alpaca]\nkey_id = "cfg-key-1234"\nsecret_key = "cfg-secret-5678"\n')
    env = {"APCA_API_KEY_ID": "env-key-1234", "APCA_API_SECRET_KEY": "env-secret-5678"}
    assert resolve_credentials(env_file=env_file, config_path=config, environ=env).key_id.reveal() == "env-key-1234"
    from_file = resolve_credentials(env_file=env_file, config_path=config, environ={})
    assert from_file.secret_key.reveal() == "file-secret-5678" and "alpaca.env" in from_file.source
    assert resolve_credentials(config_path=config, environ={}).key_id.reveal() == "cfg-key-1234"


def test_env_files_accept_quotes_exports_and_comments(tmp_path: Path):
    f = tmp_path / "a.env"
    f.write_text("export A='x y'\n# B=no\nC = plain\nnot a pair\n")
    assert read_env_file(f) == {"A": "x y", "C": "plain"}


def test_missing_keys_say_what_to_set():
    with pytest.raises(AuthenticationError, match="set APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        resolve_credentials(environ={})
    with pytest.raises(AuthenticationError, match="APCA_API_SECRET_KEY is missing"):
        resolve_credentials(environ={"APCA_API_KEY_ID": "only-the-key"})


def test_redact_and_the_logging_filter_scrub_known_values(caplog):
    Secret("a-resolved-secret-999")
    assert redact("error: a-resolved-secret-999 rejected") == "error: *** rejected"
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("sent %s", "a-resolved-secret-999")
    assert "a-resolved-secret-999" not in caplog.text and "***" in caplog.text


def test_build_provider_synthetic_by_default():
    provider = build_provider(Settings(synthetic_seed=11))
    assert provider.name == "synthetic" and provider.seed == 11


def test_settings_and_the_provider_never_hold_printable_keys(monkeypatch):
    pytest.importorskip("alpaca")
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    settings = Settings(provider="alpaca")
    provider = build_provider(settings)
    for text in (repr(settings), repr(provider), json.dumps(attrs.asdict(settings), default=str)):
        assert KEY not in text and SECRET not in text


def test_a_missing_extra_names_the_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_alpaca(name, *args, **kwargs):
        if name == "alpaca" or name.startswith("alpaca."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_alpaca)
    with pytest.raises(ImportError, match=r'pip install "options-helper\[alpaca\]"'):
        build_provider(Settings(provider="alpaca"))


def test_importing_the_package_does_not_import_alpaca_or_calendars():
    import subprocess
    import sys

    code = ("import sys, stages.providers, stages.providers.synthetic; "
            "print(any(m == 'alpaca' or m.startswith('alpaca.') for m in sys.modules), 'exchange_calendars' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


# -- the CLI ----------------------------------------------------------------------------------
def _cli(settings: Settings) -> typer.Typer:
    from frontends.cli.provider_cmd import provider_app

    root = typer.Typer()

    @root.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = settings

    root.add_typer(provider_app, name="provider")
    return root


def test_check_on_synthetic_is_ok_at_once():
    result = CliRunner().invoke(_cli(Settings()), ["provider", "check", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["provider"] == "synthetic" and doc["is_synthetic"]


def test_check_on_alpaca_without_keys_exits_non_zero(monkeypatch):
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    result = CliRunner().invoke(_cli(Settings(provider="alpaca")), ["provider", "check", "--json"])
    assert result.exit_code != 0
    doc = json.loads(result.stdout)
    assert not doc["ok"] and "APCA_API_KEY_ID" in doc["checks"][0]["detail"]


def test_check_on_alpaca_against_the_fake_reports_feeds_without_keys(fake_alpaca, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    import datetime as dt

    fake_alpaca.add_contracts(contract("SPY260116C00500000", "SPY", dt.date(2026, 1, 16), "call", 500.0))
    fake_alpaca.add_stock_bars("SPY", [bar(dt.date(2024, 6, 3), 527.0)])
    settings = Settings(provider="alpaca", alpaca=AlpacaSettings(data_url=fake_alpaca.url, trading_url=fake_alpaca.url,
                                                                 requests_per_second=1000.0))
    for args in (["provider", "check", "--json"], ["provider", "check"]):
        result = CliRunner().invoke(_cli(settings), args)
        assert result.exit_code == 0, result.output
        assert KEY not in result.output and SECRET not in result.output
    doc = json.loads(CliRunner().invoke(_cli(settings), ["provider", "check", "--json"]).stdout)
    assert doc["credentials_source"] == "the environment"
    assert {c["name"] for c in doc["checks"]} >= {"trading", "stock feed iex", "stock feed sip"}


def test_check_provider_reports_wrong_keys_as_not_ok(fake_alpaca, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "PKWRONGWRONG")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong-wrong-wrong")
    settings = Settings(provider="alpaca", alpaca=AlpacaSettings(data_url=fake_alpaca.url, trading_url=fake_alpaca.url,
                                                                 requests_per_second=1000.0))
    result = check_provider(settings)
    assert not result.ok
    assert any("check APCA_API_KEY_ID and APCA_API_SECRET_KEY" in i.detail for i in result.items)
