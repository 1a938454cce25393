"""The alpaca adapter end to end: real alpaca-py clients against a local fake of Alpaca's API."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pyarrow as pa
import pytest

from ledger.errors import (
    AuthenticationError,
    MalformedResponseError,
    SymbolNotFoundError,
    TerminalProviderError,
    TransientProviderError,
    UnsupportedDatasetError,
    UsageError,
)
from stages.providers.base import (
    OPTION_BARS_SCHEMA,
    OPTION_CHAIN_SCHEMA,
    OPTION_CONTRACTS_SCHEMA,
    STOCK_BARS_SCHEMA,
)
from tests.providers.conftest import LIVE_SESSION
from tests.providers.fake_alpaca import KEY, SECRET, Reply, bar, contract, snapshot

pytestmark = pytest.mark.alpaca

D1, D2, D3 = dt.date(2024, 5, 29), dt.date(2024, 5, 30), dt.date(2024, 5, 31)
EXP = dt.date(2024, 6, 21)


def _seed_bars(fake) -> None:
    fake.add_stock_bars("AAPL", [bar(D1, 190.0), bar(D2, 191.0), bar(D3, 192.0)])
    fake.add_stock_bars("MSFT", [bar(D1, 410.0), bar(D2, 411.0)])


# -- stock bars -------------------------------------------------------------------------------
def test_stock_bars_follow_every_page_and_come_back_sorted(fake_alpaca, make_provider):
    _seed_bars(fake_alpaca)
    table = make_provider().stock_bars(["MSFT", "AAPL"], D1, D3)
    assert table.schema.equals(STOCK_BARS_SCHEMA)
    assert table.column("symbol").to_pylist() == ["AAPL"] * 3 + ["MSFT"] * 2
    assert table.column("date").to_pylist() == [D1, D2, D3, D1, D2]
    assert table.column("close").to_pylist() == [190.0, 191.0, 192.0, 410.0, 411.0]
    assert len(fake_alpaca.seen("/v2/stocks/bars")) == 3  # five bars, two per page
    first = fake_alpaca.seen("/v2/stocks/bars")[0].query
    assert first["timeframe"] == "1Day" and first["feed"] == "iex" and first["symbols"] == "AAPL,MSFT"
    ts = table.column("ts")[0].as_py()
    assert ts.tzinfo is not None and ts == dt.datetime(2024, 5, 29, 4, 0, tzinfo=dt.UTC)


def test_an_empty_page_is_an_empty_table_with_the_schema(fake_alpaca, make_provider):
    table = make_provider().stock_bars(["AAPL"], D1, D3)
    assert table.num_rows == 0 and table.schema.equals(STOCK_BARS_SCHEMA)


def test_a_malformed_ticker_is_rejected_before_any_request(fake_alpaca, make_provider):
    with pytest.raises(UsageError, match="invalid symbol"):
        make_provider().stock_bars(["AAPL", "bad ticker"], D1, D3)
    assert fake_alpaca.requests == []


def test_a_429_is_retried_after_retry_after_without_sleeping_for_real(fake_alpaca, make_provider, clock):
    _seed_bars(fake_alpaca)
    fake_alpaca.fail("/v2/stocks/bars", Reply(status=429, body={"code": 42910000, "message": "rate limit exceeded"},
                                              headers={"Retry-After": "2"}))
    provider = make_provider()
    started = time.perf_counter()
    table = provider.stock_bars(["AAPL"], D1, D3)
    assert time.perf_counter() - started < 2.0  # alpaca-py's own 3 s sleep is switched off
    assert table.num_rows == 3
    assert clock.sleeps and clock.sleeps[0] >= 2.0
    assert provider.retrier.stats["/v2/stocks/bars"].rate_limited == 1


def test_a_429_on_a_later_page_retries_only_that_page(fake_alpaca, make_provider):
    _seed_bars(fake_alpaca)
    provider = make_provider()
    provider.stock_bars(["AAPL"], D1, D1)  # warm the client up; one request
    before = len(fake_alpaca.requests)
    fake_alpaca.fail("/v2/stocks/bars", Reply(status=200, body={"bars": {"AAPL": [bar(D1, 190.0), bar(D2, 191.0)]},
                                                               "next_page_token": "2"}),
                     Reply(status=429, body={"code": 1, "message": "slow down"}))
    table = provider.stock_bars(["AAPL"], D1, D3)
    assert table.column("close").to_pylist() == [190.0, 191.0, 192.0]
    tokens = [r.query.get("page_token") for r in fake_alpaca.requests[before:]]
    assert tokens == [None, "2", "2"]


def test_500s_are_retried_until_the_budget_is_spent(fake_alpaca, make_provider, clock):
    fake_alpaca.fail("/v2/stocks/bars", *[Reply(status=500, body={"code": 1, "message": "internal"})] * 100)
    provider = make_provider(retry_budget_seconds=10.0)
    with pytest.raises(TransientProviderError, match="retry budget is 10s"):
        provider.stock_bars(["AAPL"], D1, D3)
    assert sum(clock.sleeps) <= 10.0
    attempts = len(fake_alpaca.seen("/v2/stocks/bars"))
    assert 3 <= attempts < 20
    # backoff grows (full jitter within [d/2, d] of an exponential schedule)
    assert clock.sleeps[-1] > clock.sleeps[0]


def test_a_timeout_is_transient(fake_alpaca, make_provider):
    import requests

    from stages.providers.alpaca_http import classify

    error = classify(requests.exceptions.ReadTimeout("read timed out"), "/v2/stocks/bars")
    assert isinstance(error, TransientProviderError)


def test_401_is_an_authentication_error_that_says_what_to_check(fake_alpaca, make_provider):
    from stages.providers.credentials import Credentials, Secret

    wrong = Credentials(key_id=Secret(KEY), secret_key=Secret("not-the-secret-123"), source="test")
    with pytest.raises(AuthenticationError, match="check APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        make_provider(credentials=wrong).stock_bars(["AAPL"], D1, D3)
    assert len(fake_alpaca.requests) == 1  # terminal: not retried


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [(403, AuthenticationError, "subscription"), (404, SymbolNotFoundError, "404"),
     (422, TerminalProviderError, "HTTP 422")],
)
def test_other_4xx_are_terminal_and_typed(fake_alpaca, make_provider, status, error, text):
    fake_alpaca.fail("/v2/stocks/bars", Reply(status=status, body={"code": status * 100000, "message": "no"}))
    with pytest.raises(error, match=text) as info:
        make_provider().stock_bars(["AAPL"], D1, D3)
    assert not isinstance(info.value, TransientProviderError)
    assert len(fake_alpaca.requests) == 1


def test_malformed_json_is_a_malformed_response(fake_alpaca, make_provider):
    fake_alpaca.fail("/v2/stocks/bars", Reply(status=200, body=b'{"bars": {"AAPL": [ {"t": '))
    with pytest.raises(MalformedResponseError, match="not JSON"):
        make_provider().stock_bars(["AAPL"], D1, D3)


@pytest.mark.parametrize(
    "body",
    [{"unexpected": {}}, {"bars": {"AAPL": [{"t": "yesterday", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}]}},
     {"bars": {"AAPL": [{"t": "2024-05-29T04:00:00Z", "o": "x", "h": 1, "l": 1, "c": 1, "v": 1}]}},
     {"bars": {"AAPL": "not a list"}}],
)
def test_payloads_of_the_wrong_shape_are_malformed(fake_alpaca, make_provider, body):
    fake_alpaca.fail("/v2/stocks/bars", Reply(status=200, body=body))
    with pytest.raises(MalformedResponseError):
        make_provider().stock_bars(["AAPL"], D1, D3)


def test_the_rate_limit_spaces_requests_per_endpoint(fake_alpaca, make_provider, clock):
    _seed_bars(fake_alpaca)
    provider = make_provider(requests_per_second=2.0, reuse=False)  # no run cache: the same call asks again
    for _ in range(3):
        provider.stock_bars(["AAPL"], D1, D1)  # one request each
    # a burst of two, then the third waits half a second (the manual clock does not advance otherwise)
    assert clock.sleeps == [pytest.approx(0.5)]


# -- option contracts -------------------------------------------------------------------------
def _seed_contracts(fake, underlying="AAPL", root="AAPL", n=5):
    rows = [contract(f"{root}240621{cp}00{190 + i:03d}000", underlying, EXP, "call" if cp == "C" else "put",
                     190.0 + i, open_interest=100 + i, oi_date=D3)
            for i in range(n) for cp in "CP"]
    fake.add_contracts(*rows)
    return rows


def test_option_contracts_are_paged_with_page_token(fake_alpaca, make_provider):
    _seed_contracts(fake_alpaca)
    table = make_provider().option_contracts("AAPL", LIVE_SESSION)
    assert table.schema.equals(OPTION_CONTRACTS_SCHEMA)
    assert table.num_rows == 10
    assert len(fake_alpaca.seen("/v2/options/contracts")) == 5
    tokens = [r.query.get("page_token") for r in fake_alpaca.seen("/v2/options/contracts")]
    assert tokens == [None, "2", "4", "6", "8"]
    rows = table.to_pylist()
    assert rows[0]["option_type"] == "call" and rows[0]["strike"] == 190.0 and rows[0]["multiplier"] == 100
    assert rows[0]["open_interest"] == 100 and rows[0]["open_interest_date"] == D3


def test_an_empty_contracts_page_in_the_middle_is_followed(fake_alpaca, make_provider):
    _seed_contracts(fake_alpaca, n=1)
    fake_alpaca.fail("/v2/options/contracts", Reply(body={"option_contracts": [], "next_page_token": "0"}))
    assert make_provider().option_contracts("AAPL", LIVE_SESSION).num_rows == 2


def test_no_contracts_is_symbol_not_found(fake_alpaca, make_provider):
    with pytest.raises(SymbolNotFoundError, match="no option contracts for XYZ"):
        make_provider().option_contracts("XYZ", LIVE_SESSION)


def test_past_contracts_drop_values_dated_after_the_session(fake_alpaca, make_provider):
    _seed_contracts(fake_alpaca, n=1)
    table = make_provider().option_contracts("AAPL", D2)  # OI is dated D3, after D2
    assert table.column("open_interest").null_count == table.num_rows
    statuses = {r.query["status"] for r in fake_alpaca.seen("/v2/options/contracts")}
    assert statuses == {"active", "inactive"}


# -- option chain -----------------------------------------------------------------------------
def test_the_live_chain_merges_quotes_open_interest_and_spot(fake_alpaca, make_provider):
    _seed_contracts(fake_alpaca, n=2)
    fake_alpaca.add_stock_bars("AAPL", [bar(D3, 192.0), bar(LIVE_SESSION, 193.5)])
    fake_alpaca.add_snapshots("AAPL", {
        "AAPL240621C00190000": snapshot(5.0, 5.2, last=5.1, daily_volume=42, day=LIVE_SESSION),
        "AAPL240621P00190000": snapshot(2.0, 2.1, iv=None),
        "AAPL240621C00191000": snapshot(4.4, 4.6),
    })
    snap = make_provider().option_chain("AAPL", LIVE_SESSION)
    assert snap.table.schema.equals(OPTION_CHAIN_SCHEMA)
    assert snap.spot == 193.5 and snap.as_of == LIVE_SESSION and snap.quoted_at.tzinfo is not None
    rows = {r["contract_symbol"]: r for r in snap.table.to_pylist()}
    call = rows["AAPL240621C00190000"]
    assert (call["bid"], call["ask"], call["last"], call["volume"], call["open_interest"]) == (5.0, 5.2, 5.1, 42, 100)
    assert call["delta"] == 0.5 and call["implied_volatility"] == 0.25
    put = rows["AAPL240621P00190000"]
    assert put["implied_volatility"] is None and put["delta"] is None and put["option_type"] == "put"
    assert snap.table.column("contract_symbol").to_pylist() == sorted(
        rows, key=lambda s: (s[4:10], s[10], s[11:]))
    assert fake_alpaca.seen("/v1beta1/options/snapshots/AAPL")[0].query["feed"] == "indicative"


def test_a_past_chain_fails_clearly_instead_of_returning_todays(fake_alpaca, make_provider):
    provider = make_provider()
    assert not provider.capabilities.can_backfill("option_chain")
    assert provider.capabilities.can_backfill("stock_bars")
    with pytest.raises(UnsupportedDatasetError, match="live only"):
        provider.option_chain("AAPL", D3)
    assert fake_alpaca.requests == []


def test_before_the_open_the_live_session_is_the_previous_one(make_provider):
    early = dt.datetime(2024, 6, 3, 12, 0, tzinfo=dt.UTC)  # 08:00 in New York
    assert make_provider(now=lambda: early).live_session() == D3


def test_an_empty_chain_is_symbol_not_found(fake_alpaca, make_provider):
    with pytest.raises(SymbolNotFoundError, match="no option chain for XYZ"):
        make_provider().option_chain("XYZ", LIVE_SESSION)


def test_brk_b_keeps_its_dot_while_its_contracts_use_the_root_brkb(fake_alpaca, make_provider):
    fake_alpaca.add_stock_bars("BRK.B", [bar(D3, 405.0), bar(LIVE_SESSION, 406.0)])
    _seed_contracts(fake_alpaca, underlying="BRK.B", root="BRKB", n=1)
    fake_alpaca.add_snapshots("BRK.B", {"BRKB240621C00190000": snapshot(216.0, 217.0)})
    provider = make_provider()
    bars = provider.stock_bars(["BRK.B"], D3, LIVE_SESSION)
    assert bars.column("symbol").to_pylist() == ["BRK.B", "BRK.B"]
    contracts = provider.option_contracts("BRK.B", LIVE_SESSION)
    assert set(contracts.column("underlying").to_pylist()) == {"BRK.B"}
    snap = provider.option_chain("BRK.B", LIVE_SESSION)
    assert snap.table.column("underlying").to_pylist() == ["BRK.B"] and snap.spot == 406.0
    assert fake_alpaca.seen("/v1beta1/options/snapshots/BRK.B")


# -- option bars ------------------------------------------------------------------------------
def test_option_bars_are_paged_and_sorted(fake_alpaca, make_provider):
    a, b = "AAPL240621C00190000", "AAPL240621P00190000"
    fake_alpaca.add_option_bars(a, [bar(D1, 5.0), bar(D2, 5.5)])
    fake_alpaca.add_option_bars(b, [bar(D2, 2.0)])
    table = make_provider().option_bars([b, a], D1, D3)
    assert table.schema.equals(OPTION_BARS_SCHEMA)
    assert table.column("contract_symbol").to_pylist() == [a, a, b]
    assert len(fake_alpaca.seen("/v1beta1/options/bars")) == 2
    with pytest.raises(UsageError):
        make_provider().option_bars(["AAPL"], D1, D3)


# -- check, settings, secrets -----------------------------------------------------------------
def test_check_reports_credentials_and_feeds(fake_alpaca, make_provider):
    _seed_contracts(fake_alpaca, underlying="SPY", root="SPY", n=1)
    fake_alpaca.add_stock_bars("SPY", [bar(D3, 527.0)])
    fake_alpaca.add_snapshots("SPY", {"SPY240621C00190000": snapshot(1.0, 1.1)})
    fake_alpaca.fail("/v2/stocks/bars", Reply(body={"bars": {"SPY": [bar(D3, 527.0)]}, "next_page_token": None}),
                     Reply(status=403, body={"code": 1, "message": "subscription"}))
    result = make_provider().check()
    assert result.ok
    by_name = {i.name: i for i in result.items}
    assert by_name["trading"].ok and by_name["stock feed iex"].ok
    assert not by_name["stock feed sip"].ok and "403" in by_name["stock feed sip"].detail
    assert by_name["options feed indicative"].ok


def test_check_with_wrong_keys_is_not_ok(fake_alpaca, make_provider):
    from stages.providers.credentials import Credentials, Secret

    wrong = Credentials(key_id=Secret("PKWRONG0000"), secret_key=Secret("wrong-secret-000"), source="test")
    result = make_provider(credentials=wrong).check()
    assert not result.ok and all(not i.ok for i in result.items)


def test_environment_urls_and_keys_drive_build_provider(fake_alpaca, monkeypatch):
    from ledger.config import load_settings
    from stages.providers import build_provider

    env = {"APCA_API_DATA_URL": fake_alpaca.url + "/", "APCA_API_BASE_URL": fake_alpaca.url + "/v2",
           "APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET, "OPTIONS_HELPER_PROVIDER": "alpaca"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("OPTIONS_HELPER_CONFIG", raising=False)
    fake_alpaca.add_stock_bars("AAPL", [bar(D1, 190.0)])
    _seed_contracts(fake_alpaca, n=1)
    provider = build_provider(load_settings(environ=env))
    assert provider.name == "alpaca" and not provider.is_synthetic
    assert provider.stock_bars(["AAPL"], D1, D1).num_rows == 1
    assert provider.option_contracts("AAPL", D1, expiry_lte=EXP).num_rows == 2
    assert provider._client("stock")._retry == 0 and provider._client("stock")._retry_wait == 0


def test_keys_never_appear_in_logs_errors_or_reprs(fake_alpaca, make_provider, caplog, clock):
    caplog.set_level(logging.DEBUG)
    provider = make_provider(retry_budget_seconds=3.0)
    texts: list[str] = [repr(provider), str(provider.check().to_json()), repr(fake_alpaca.credentials())]
    scenarios = [
        (Reply(status=429, body={"code": 1, "message": "slow"}), Reply(status=500, body={"code": 1, "message": "x"})),
        (Reply(status=200, body=b"not json"),),
        (Reply(status=401, body={"code": 40110000, "message": f"bad key {KEY} / {SECRET}"}),),
        tuple([Reply(status=503, body={"code": 1, "message": f"echo {SECRET}"})] * 50),
    ]
    for replies in scenarios:
        fake_alpaca.fail("/v2/stocks/bars", *replies)
        try:
            provider.stock_bars(["AAPL"], D1, D3)
        except Exception as e:  # every exception a traceback would show, and its repr
            error: BaseException | None = e
            while error is not None:
                texts += [str(error), repr(error)]
                error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    texts += [r.getMessage() for r in caplog.records]
    assert any("retry" in t for t in texts)  # the scenarios did log and raise
    for text in texts:
        assert KEY not in text and SECRET not in text, text


def test_chunks_of_many_symbols(fake_alpaca, make_provider):
    symbols = [f"S{i:03d}" for i in range(150)]
    for s in symbols[:3]:
        fake_alpaca.add_stock_bars(s, [bar(D1, 10.0)])
    table = make_provider().stock_bars(symbols, D1, D1)
    assert table.num_rows == 3 and isinstance(table, pa.Table)
    assert len({r.query["symbols"] for r in fake_alpaca.seen("/v2/stocks/bars")}) == 1  # up to 500 a request
    make_provider(reuse=False).stock_bars(symbols, D1, D1)  # the plain plan: 100 a request
    assert len({r.query["symbols"] for r in fake_alpaca.seen("/v2/stocks/bars")}) == 3


def test_a_pagination_loop_is_a_malformed_response_not_an_endless_fetch(fake_alpaca, make_provider):
    """Regression (soak): a server repeating next_page_token made alpaca-py follow it forever."""
    page = {"bars": {"AAPL": [{"t": "2024-05-29T04:00:00Z", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}]},
            "next_page_token": "same-token"}
    fake_alpaca.fail("/v2/stocks/bars", *[Reply(status=200, body=page) for _ in range(5)])
    with pytest.raises(MalformedResponseError, match="pagination loop"):
        make_provider().stock_bars(["AAPL"], D1, D3)
    assert len(fake_alpaca.seen("/v2/stocks/bars")) == 2
