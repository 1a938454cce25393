"""A local stand-in for Alpaca's REST APIs, speaking their JSON, for tests and soak runs.

Stdlib only. It serves the four endpoints the adapter uses plus latest option quotes, pages
results with ``next_page_token``, checks the key headers (401 otherwise), and can be told to
misbehave: ``fail(prefix, Reply(...), ...)`` queues replies that are served before the normal
ones (429 with Retry-After, 500s, malformed bodies, ...).

Paging follows Alpaca's documented limits (``LIMITS``): a page holds ``limit`` rows (Alpaca's
default when the request gives none), and a ``limit`` above the endpoint's maximum, or more
symbols than an endpoint takes, is answered 422 as Alpaca does. ``page_size`` additionally caps
every page (the unit tests use 2 to exercise paging); ``page_size=None`` serves Alpaca's pages
exactly, which is what request counts are measured against. An option snapshot without a
``dailyBar`` gets the contract's latest bar from the option-bars store, as Alpaca's does.

    with FakeAlpaca() as fake:
        fake.add_stock_bars("AAPL", [bar(day, 185.0)])
        fake.fail("/v2/stocks/bars", Reply(429, headers={"Retry-After": "1"}))
        provider = AlpacaProvider(credentials=fake.credentials(), data_url=fake.url, trading_url=fake.url)

``ManualClock`` is a clock whose ``sleep`` only advances time: the adapter's whole retry
policy runs without waiting.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import attrs

KEY = "fake-key-id-PK0123456789"
SECRET = "fake-secret-Zx9Yw8Vu7Ts6Rq5Po4"
NEW_YORK = ZoneInfo("America/New_York")


@attrs.frozen(kw_only=True)
class Reply:
    """One scripted response: status, a JSON-able body (or raw ``bytes``), headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Limit:
    """An endpoint's documented paging limits: rows per page (default and maximum) and symbols."""

    default: int
    maximum: int
    symbols: int | None = None


# docs.alpaca.markets: stock and option bars up to 10,000 rows a page (default 1,000), option
# bars 100 contract symbols a request; chain snapshots up to 1,000 a page (default 100); option
# contracts up to 10,000 a page (default 100). Stock bars document no symbol limit.
LIMITS: dict[str, Limit] = {
    "/v2/stocks/bars": Limit(default=1_000, maximum=10_000),
    "/v1beta1/options/bars": Limit(default=1_000, maximum=10_000, symbols=100),
    "/v1beta1/options/snapshots/": Limit(default=100, maximum=1_000),
    "/v2/options/contracts": Limit(default=100, maximum=10_000),
}


@attrs.frozen(kw_only=True)
class SeenRequest:
    path: str
    query: dict[str, str]
    authorized: bool
    at: float = 0.0  # the fake's clock when the request arrived (see FakeAlpaca(clock=...))


@attrs.define
class ManualClock:
    """``now()`` and ``sleep()`` for tests: sleeping advances the clock and is recorded."""

    now_value: float = 1000.0
    sleeps: list[float] = attrs.field(factory=list)

    def __call__(self) -> float:
        return self.now_value

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_value += seconds


def bar_time(day: dt.date) -> str:
    """Alpaca's stamp for a daily bar: midnight New York time, in UTC."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=NEW_YORK).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bar(day: dt.date, close: float, *, volume: int = 1000) -> dict[str, Any]:
    return {"t": bar_time(day), "o": close - 0.5, "h": close + 1.0, "l": close - 1.0, "c": close,
            "v": volume, "n": max(1, volume // 100), "vw": close - 0.1}


def contract(symbol: str, underlying: str, expiry: dt.date, option_type: str, strike: float, *,
             open_interest: int | None = 100, oi_date: dt.date | None = None, close_price: float | None = 1.0,
             status: str = "active") -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{abs(hash(symbol)) % 10**12:012d}", "symbol": symbol,
        "name": f"{underlying} {expiry} {strike} {option_type}", "status": status, "tradable": True,
        "expiration_date": expiry.isoformat(), "root_symbol": underlying.replace(".", ""),
        "underlying_symbol": underlying, "underlying_asset_id": "00000000-0000-4000-8000-000000000001",
        "type": option_type, "style": "american", "strike_price": f"{strike:g}", "size": "100",
        "open_interest": None if open_interest is None else str(open_interest),
        "open_interest_date": oi_date.isoformat() if oi_date else None,
        "close_price": None if close_price is None else str(close_price),
        "close_price_date": oi_date.isoformat() if oi_date else None,
    }


def snapshot(bid: float, ask: float, *, last: float | None = None, iv: float | None = 0.25,
             quote_time: str = "2024-06-03T19:59:59.9Z", daily_volume: int | None = None,
             day: dt.date | None = None) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "latestQuote": {"t": quote_time, "ax": "C", "ap": ask, "as": 10, "bx": "C", "bp": bid, "bs": 12, "c": "A"},
    }
    if last is not None:
        snap["latestTrade"] = {"t": quote_time, "x": "C", "p": last, "s": 1, "c": "I"}
    if iv is not None:
        snap["impliedVolatility"] = iv
        snap["greeks"] = {"delta": 0.5, "gamma": 0.04, "rho": 0.05, "theta": -0.09, "vega": 0.2}
    if daily_volume is not None and day is not None:
        snap["dailyBar"] = {"t": bar_time(day), "o": bid, "h": ask, "l": bid, "c": last or bid,
                            "v": daily_volume, "n": 3, "vw": bid}
    return snap


class FakeAlpaca:
    """The fake server; a context manager. ``url`` serves both the data and trading APIs."""

    def __init__(self, *, key: str = KEY, secret: str = SECRET, page_size: int | None = 2,
                 clock: Callable[[], float] | None = None) -> None:
        self.key, self.secret, self.page_size = key, secret, page_size
        self.clock = clock or (lambda: 0.0)
        self.stock_bars: dict[str, list[dict]] = defaultdict(list)
        self.option_bars: dict[str, list[dict]] = defaultdict(list)
        self.contracts: list[dict] = []
        self.snapshots: dict[str, dict[str, dict]] = defaultdict(dict)
        self.requests: list[SeenRequest] = []
        self._faults: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.routes: dict[str, Callable[[str, dict[str, str]], Reply]] = {
            "/v2/stocks/bars": lambda path, q: self._bars(self.stock_bars, q, LIMITS["/v2/stocks/bars"]),
            "/v1beta1/options/bars": lambda path, q: self._bars(self.option_bars, q, LIMITS["/v1beta1/options/bars"]),
            "/v1beta1/options/snapshots/": self._chain,
            "/v1beta1/options/quotes/latest": self._latest_quotes,
            "/v2/options/contracts": self._contracts,
        }

    # -- data -------------------------------------------------------------------------------
    def add_stock_bars(self, symbol: str, bars: list[dict]) -> None:
        self.stock_bars[symbol].extend(bars)

    def add_option_bars(self, symbol: str, bars: list[dict]) -> None:
        self.option_bars[symbol].extend(bars)

    def add_contracts(self, *rows: dict) -> None:
        self.contracts.extend(rows)

    def add_snapshots(self, underlying: str, snaps: dict[str, dict]) -> None:
        self.snapshots[underlying].update(snaps)

    def fail(self, prefix: str, *replies: Reply) -> None:
        """Serve ``replies`` (in order) to the next requests whose path starts with ``prefix``."""
        with self._lock:
            self._faults[prefix].extend(replies)

    def credentials(self):  # type: ignore[no-untyped-def]
        from stages.providers.credentials import Credentials, Secret

        return Credentials(key_id=Secret(self.key), secret_key=Secret(self.secret), source="the test fixture")

    def seen(self, prefix: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    def counts(self) -> dict[str, int]:
        """Requests per endpoint (snapshot paths folded into ``/v1beta1/options/snapshots/``)."""
        out: dict[str, int] = defaultdict(int)
        for r in self.requests:
            key = "/v1beta1/options/snapshots/" if r.path.startswith("/v1beta1/options/snapshots/") else r.path
            out[key] += 1
        return dict(out)

    # -- handlers ---------------------------------------------------------------------------
    def _page(self, items: list, q: dict[str, str], limit: Limit) -> tuple[list, str | None]:
        start = int(q.get("page_token") or 0)
        size = int(q["limit"]) if q.get("limit") else limit.default
        if self.page_size is not None:
            size = min(size, self.page_size)
        chunk = items[start : start + size]
        more = start + size < len(items)
        return chunk, (str(start + size) if more else None)

    @staticmethod
    def _rejected(q: dict[str, str], limit: Limit, symbols: list[str] | None = None) -> Reply | None:
        """Alpaca's 422 for a ``limit`` out of range or too many symbols, else None."""
        try:
            asked = int(q["limit"]) if q.get("limit") else limit.default
        except ValueError:
            asked = -1
        if not 1 <= asked <= limit.maximum:
            return Reply(status=422, body={"code": 42210000, "message": f"invalid limit: must be 1..{limit.maximum}"})
        if symbols is not None and limit.symbols is not None and len(symbols) > limit.symbols:
            return Reply(status=422, body={"code": 42210000,
                                           "message": f"too many symbols: at most {limit.symbols} per request"})
        return None

    @staticmethod
    def _in_range(t: str, q: dict[str, str]) -> bool:
        ts = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
        lo = dt.datetime.fromisoformat(q["start"]) if q.get("start") else None
        hi = dt.datetime.fromisoformat(q["end"]) if q.get("end") else None
        return (lo is None or ts >= lo) and (hi is None or ts <= hi)

    def _bars(self, store: dict[str, list[dict]], q: dict[str, str], limit: Limit) -> Reply:
        symbols = q.get("symbols", "").split(",")
        if (rejected := self._rejected(q, limit, symbols)) is not None:
            return rejected
        flat = [(s, b) for s in sorted(symbols) for b in store.get(s, []) if self._in_range(b["t"], q)]
        chunk, token = self._page(flat, q, limit)
        bars: dict[str, list[dict]] = defaultdict(list)
        for s, b in chunk:
            bars[s].append(b)
        return Reply(body={"bars": dict(bars), "next_page_token": token})

    def _chain(self, path: str, q: dict[str, str]) -> Reply:
        limit = LIMITS["/v1beta1/options/snapshots/"]
        if (rejected := self._rejected(q, limit)) is not None:
            return rejected
        underlying = path.rsplit("/", 1)[-1]
        items = sorted(self.snapshots.get(underlying, {}).items())
        chunk, token = self._page(items, q, limit)
        return Reply(body={"snapshots": {s: self._with_daily_bar(s, snap) for s, snap in chunk},
                           "next_page_token": token})

    def _with_daily_bar(self, symbol: str, snap: dict) -> dict:
        bars = self.option_bars.get(symbol)
        if "dailyBar" in snap or not bars:
            return snap
        return {**snap, "dailyBar": max(bars, key=lambda b: b["t"])}

    def _latest_quotes(self, path: str, q: dict[str, str]) -> Reply:
        quotes = {}
        for s in q.get("symbols", "").split(","):
            for snaps in self.snapshots.values():
                if s in snaps and "latestQuote" in snaps[s]:
                    quotes[s] = snaps[s]["latestQuote"]
        return Reply(body={"quotes": quotes})

    def _contracts(self, path: str, q: dict[str, str]) -> Reply:
        limit = LIMITS["/v2/options/contracts"]
        if (rejected := self._rejected(q, limit)) is not None:
            return rejected
        wanted = set(q.get("underlying_symbols", "").split(","))
        status = q.get("status", "active")
        rows = [
            c for c in self.contracts
            if c["underlying_symbol"] in wanted and c["status"] == status
            and (not q.get("expiration_date_gte") or c["expiration_date"] >= q["expiration_date_gte"])
            and (not q.get("expiration_date_lte") or c["expiration_date"] <= q["expiration_date_lte"])
        ]
        chunk, token = self._page(rows, q, limit)
        return Reply(body={"option_contracts": chunk, "next_page_token": token})

    # -- server -----------------------------------------------------------------------------
    def handle(self, path: str, q: dict[str, str], headers: Any) -> Reply:
        authorized = headers.get("APCA-API-KEY-ID") == self.key and headers.get("APCA-API-SECRET-KEY") == self.secret
        with self._lock:
            self.requests.append(SeenRequest(path=path, query=q, authorized=authorized, at=self.clock()))
            fault = next((self._faults[p].popleft() for p in self._faults if path.startswith(p) and self._faults[p]),
                         None)
        if fault is not None:
            return fault
        if not authorized:
            return Reply(status=401, body={"code": 40110000, "message": "request is not authorized"})
        for prefix, fn in self.routes.items():
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
                return fn(path, q)
        return Reply(status=404, body={"code": 40410000, "message": f"endpoint not found: {path}"})

    def __enter__(self) -> FakeAlpaca:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                reply = fake.handle(u.path, q, self.headers)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


__all__ = ["KEY", "LIMITS", "SECRET", "FakeAlpaca", "Limit", "ManualClock", "Reply", "SeenRequest", "bar", "bar_time", "contract", "snapshot"]
