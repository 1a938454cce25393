"""The ``alpaca`` provider: alpaca-py's clients behind the provider interface.

* stock bars: ``StockHistoricalDataClient.get_stock_bars`` (``/v2/stocks/bars``), daily,
  split-adjusted, feed ``[alpaca] stock_feed`` (iex or sip);
* option contracts: ``TradingClient.get_option_contracts`` (``/v2/options/contracts``), paged
  here with ``page_token`` (alpaca-py does not follow it for this endpoint);
* option chain: ``OptionHistoricalDataClient.get_option_chain``
  (``/v1beta1/options/snapshots/{underlying}``), feed ``[alpaca] options_feed`` (indicative or
  opra), merged with the contracts' open interest and the underlying's latest daily close;
* option bars: ``OptionHistoricalDataClient.get_option_bars`` (``/v1beta1/options/bars``).

Option-chain snapshots are **live only**: Alpaca serves the market as it is now. Asking for
any other session raises ``UnsupportedDatasetError`` rather than filing today's quotes under
an old date. Contracts can be listed for a past session, but their open interest and close
price are only kept when Alpaca dates them on or before that session.

Base URLs come from ``APCA_API_DATA_URL`` / ``APCA_API_BASE_URL`` (via ``Settings``), so the
whole adapter runs against a local server. Keys are passed to the clients explicitly.

**The request budget** (``reuse=True``, the default; ``reuse=False`` is the plain plan, one
request per call, kept as the baseline the request benchmark compares against). The runner keeps
one provider for a whole daily, and the provider remembers what the run fetched
(``alpaca_cache.RunCache``), so within a run:

* stock bars come in multi-symbol requests of ``STOCK_SYMBOLS_PER_REQUEST`` (the candles stage
  announces its symbols with ``prefetch_stock_bars``); the chain's spot is the session's close
  from them;
* contracts are listed for ``CONTRACT_UNDERLYINGS_PER_REQUEST`` underlyings a request at 10,000 a
  page (``prefetch_option_contracts``), once per underlying and session: the options-bars stage's
  horizon is a filter on them and the chain's open interest comes from them;
* the live session's option bars are the chain snapshot's ``dailyBar`` (the snapshot is fetched
  once, at Alpaca's largest page of 1,000, and kept for the snapshot stage); the bars endpoint
  (100 contracts a request, 10,000 rows a page) is asked only for past sessions and for
  contracts the snapshot does not list.

Every request, attempts and retries included, goes through one limiter: ``requests_per_second``
per endpoint and ``requests_per_minute`` over all of them (Alpaca's plan: 200 on the free one).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from alpaca.data.enums import Adjustment, DataFeed, OptionsFeed
from alpaca.data.historical import OptionHistoricalDataClient, StockHistoricalDataClient
from alpaca.data.requests import (
    OptionBarsRequest,
    OptionChainRequest,
    OptionLatestQuoteRequest,
    StockBarsRequest,
)
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetStatus
from alpaca.trading.requests import GetOptionContractsRequest

import stages.providers.alpaca_parse as parse
from ledger import retry
from ledger.errors import (
    AuthenticationError,
    ConfigError,
    MalformedResponseError,
    ProviderError,
    SymbolNotFoundError,
    TerminalProviderError,
    UnsupportedDatasetError,
    UsageError,
)
from stages.occ import parse_occ, require_ticker
from stages.providers.alpaca_cache import CachedChain, RunCache
from stages.providers.alpaca_http import Retrier, install
from stages.providers.base import (
    CAPABILITIES,
    OPTION_BARS_SCHEMA,
    OPTION_BARS_SORT,
    STOCK_BARS_SCHEMA,
    STOCK_BARS_SORT,
    ChainSnapshot,
    CheckItem,
    ProviderCheck,
    sorted_table,
)
from stages.providers.credentials import Credentials, credentials_for, redact

STOCK_FEEDS = ("iex", "sip")
OPTIONS_FEEDS = ("indicative", "opra")
SYMBOLS_PER_REQUEST = 100  # option bars: Alpaca takes at most 100 contract symbols a request
STOCK_SYMBOLS_PER_REQUEST = 500  # stock bars: no documented limit; 500 tickers keep the URL under 4 KB
CONTRACT_UNDERLYINGS_PER_REQUEST = 100  # contracts of many underlyings share 10,000-row pages
CONTRACTS_PAGE_SIZE = 10_000
CONTRACTS_HORIZON_DAYS = 3_660  # Alpaca defaults expiration_date_lte to the next weekend: ask for all
MAX_CONTRACT_PAGES = 500
PROBE_SYMBOL = "SPY"


def _base_url(url: str | None, *versions: str) -> str | None:
    """A base URL without a trailing slash or API version (alpaca-py appends the version)."""
    if not url:
        return None
    url = url.rstrip("/")
    for v in versions:
        if url.endswith("/" + v):
            url = url[: -len(v) - 1]
    return url


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _owner(symbol: Any, underlyings: Sequence[str]) -> str | None:
    """Which of ``underlyings`` an OCC contract symbol belongs to (its root, or an adjusted root)."""
    for u in underlyings:
        try:
            parse_occ(symbol, underlying=u)
        except UsageError:
            continue
        return u
    return None


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def _end(day: dt.date) -> dt.datetime:
    # Daily bars are stamped at midnight New York time (04:00/05:00 UTC): the end of the UTC
    # day of ``day`` includes its bar and excludes the next one.
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


class AlpacaProvider:
    """Alpaca market data through alpaca-py; see the module docstring."""

    name = "alpaca"
    is_synthetic = False
    process_safe = False  # one rate limiter and one per-run cache, in this process
    capabilities = CAPABILITIES["alpaca"]

    def __init__(
        self,
        *,
        credentials: Credentials,
        stock_feed: str = "iex",
        options_feed: str = "indicative",
        data_url: str | None = None,
        trading_url: str | None = None,
        paper: bool = True,
        retry_budget_seconds: float = 30.0,
        requests_per_second: float = 3.0,
        requests_per_minute: float | None = 200.0,
        timeout_seconds: float = 30.0,
        clock: Callable[[], float] = retry.monotonic,
        sleep: Callable[[float], None] = retry.pause,
        jitter: random.Random | None = None,
        now: Callable[[], dt.datetime] | None = None,
        reuse: bool = True,
        cache_seconds: float = 1800.0,
    ) -> None:
        if stock_feed not in STOCK_FEEDS:
            raise ConfigError(f"stock_feed must be one of {', '.join(STOCK_FEEDS)}, got {stock_feed!r}")
        if options_feed not in OPTIONS_FEEDS:
            raise ConfigError(f"options_feed must be one of {', '.join(OPTIONS_FEEDS)}, got {options_feed!r}")
        self._credentials = credentials
        self.stock_feed = stock_feed
        self.options_feed = options_feed
        self.data_url = _base_url(data_url, "v2", "v1beta1")
        self.trading_url = _base_url(trading_url, "v2")
        self.paper = paper
        self.timeout_seconds = timeout_seconds
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self.retrier = Retrier(
            budget_seconds=retry_budget_seconds, requests_per_second=requests_per_second,
            requests_per_minute=requests_per_minute, clock=clock, sleep=sleep, jitter=jitter or random.Random(),
        )
        self._clients: dict[str, Any] = {}
        self.reuse = reuse
        self.cache = RunCache(ttl_seconds=cache_seconds, clock=clock)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> AlpacaProvider:
        a = settings.alpaca
        kwargs: dict[str, Any] = dict(
            stock_feed=a.stock_feed, options_feed=a.options_feed, data_url=a.data_url, trading_url=a.trading_url,
            paper=a.paper, retry_budget_seconds=a.retry_budget_seconds, requests_per_second=a.requests_per_second,
            requests_per_minute=a.requests_per_minute,
        )
        kwargs.update(overrides)
        if "credentials" not in kwargs:
            kwargs["credentials"] = credentials_for(settings)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return (
            f"AlpacaProvider(stock_feed={self.stock_feed!r}, options_feed={self.options_feed!r}, "
            f"data_url={self.data_url!r}, trading_url={self.trading_url!r}, paper={self.paper}, "
            f"credentials_source={self._credentials.source!r})"
        )

    @property
    def credentials_source(self) -> str:
        return self._credentials.source

    # -- clients ----------------------------------------------------------------------------
    def _client(self, kind: str) -> Any:
        if kind not in self._clients:
            key, secret = self._credentials.key_id.reveal(), self._credentials.secret_key.reveal()
            client: Any
            if kind == "stock":
                client = StockHistoricalDataClient(key, secret, raw_data=True, url_override=self.data_url)
            elif kind == "option":
                client = OptionHistoricalDataClient(key, secret, raw_data=True, url_override=self.data_url)
            else:
                client = TradingClient(key, secret, paper=self.paper, raw_data=True, url_override=self.trading_url)
            self._clients[kind] = install(client, self.retrier, timeout=self.timeout_seconds)
        return self._clients[kind]

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run an alpaca-py call; translate what the retrier did not (payload-shape errors)."""
        try:
            return fn()
        except ProviderError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise MalformedResponseError(
                f"Alpaca returned an unexpected payload for {what} ({type(e).__name__}: {redact(str(e))[:200]}); "
                "check that APCA_API_DATA_URL / APCA_API_BASE_URL point at Alpaca"
            ) from e

    # -- calendar ---------------------------------------------------------------------------
    def live_session(self) -> dt.date:
        """The session Alpaca's live data describes now (before 09:30 New York: the previous one)."""
        from ledger.calendar import TradingCalendar

        cal = TradingCalendar.xnys()
        local = self._now().astimezone(parse.NEW_YORK)
        session = cal.session_on_or_before(local.date())
        if session == local.date() and local.time() < dt.time(9, 30):
            session = cal.previous_session(session)
        return session

    @staticmethod
    def _require_session(day: dt.date) -> None:
        from ledger.calendar import TradingCalendar

        TradingCalendar.xnys().require_session(day)

    # -- datasets ---------------------------------------------------------------------------
    def _fetch_stock_bars(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> list[pa.Table]:
        tables = []
        size = STOCK_SYMBOLS_PER_REQUEST if self.reuse else SYMBOLS_PER_REQUEST
        for chunk in _chunks(tickers, size):
            request = StockBarsRequest(
                symbol_or_symbols=chunk, timeframe=TimeFrame.Day, start=_start(start), end=_end(end),
                feed=DataFeed(self.stock_feed), adjustment=Adjustment.SPLIT,
            )
            payload = self._call("stock bars", functools.partial(self._client("stock").get_stock_bars, request))
            table = parse.bars_table(payload, key_name="symbol", start=start, end=end, what="stock bars")
            if self.reuse:
                self.cache.put_bars(chunk, start, end, table)
            tables.append(table)
        return tables

    def prefetch_stock_bars(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> None:
        """Fetch the bars of many symbols in a few multi-symbol requests for the calls to come."""
        if not self.reuse or start > end:
            return
        tickers = sorted({require_ticker(s) for s in symbols})
        self._fetch_stock_bars([t for t in tickers if self.cache.bars(t, start, end) is None], start, end)

    def stock_bars(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table:
        if start > end:
            raise UsageError(f"start {start} is after end {end}; give the range oldest first")
        tickers = sorted({require_ticker(s) for s in symbols})
        tables: list[pa.Table] = []
        missing = tickers
        if self.reuse:
            cached = {t: self.cache.bars(t, start, end) for t in tickers}
            tables = [table for table in cached.values() if table is not None]
            missing = [t for t, table in cached.items() if table is None]
        tables += self._fetch_stock_bars(missing, start, end)
        if not tables:
            return STOCK_BARS_SCHEMA.empty_table()
        return sorted_table(pa.concat_tables(tables), STOCK_BARS_SORT).combine_chunks()

    def _contract_rows(self, underlyings: Sequence[str], as_of: dt.date, expiry_lte: dt.date | None,
                       statuses: Sequence[AssetStatus], limit: int = CONTRACTS_PAGE_SIZE,
                       max_pages: int = MAX_CONTRACT_PAGES) -> list[Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = []
        for status in statuses:
            token: str | None = None
            for _page in range(max_pages):
                request = GetOptionContractsRequest(
                    underlying_symbols=list(underlyings), status=status, expiration_date_gte=as_of,
                    expiration_date_lte=expiry_lte, limit=limit, page_token=token,
                )
                payload = self._call("option contracts",
                                     functools.partial(self._client("trading").get_option_contracts, request))
                page, token = parse.contracts_page(payload)
                rows.extend(page)
                if token is None or max_pages == 1:
                    break
            else:
                raise TerminalProviderError(
                    f"option contracts for {', '.join(underlyings)} did not end after {max_pages} pages; "
                    "narrow the request with expiry_lte"
                )
        return rows

    def _statuses(self, as_of: dt.date) -> tuple[bool, list[AssetStatus]]:
        live = as_of >= self.live_session()
        return live, [AssetStatus.ACTIVE] if live else [AssetStatus.ACTIVE, AssetStatus.INACTIVE]

    def _list_contracts(self, underlyings: Sequence[str], as_of: dt.date) -> None:
        """Every contract of ``underlyings`` expiring on or after ``as_of``, into the run cache."""
        live, statuses = self._statuses(as_of)
        horizon = as_of + dt.timedelta(days=CONTRACTS_HORIZON_DAYS)
        for chunk in _chunks(list(underlyings), CONTRACT_UNDERLYINGS_PER_REQUEST):
            by_underlying: dict[str, list[Mapping[str, Any]]] = {u: [] for u in chunk}
            for row in self._contract_rows(chunk, as_of, horizon, statuses):
                owner = row.get("underlying_symbol") if isinstance(row, Mapping) else None
                if owner not in by_underlying:
                    owner = _owner(row.get("symbol") if isinstance(row, Mapping) else None, chunk)
                if owner is None:
                    raise MalformedResponseError(
                        f"Alpaca listed a contract of none of {', '.join(chunk)}: {str(row)[:120]}")
                by_underlying[owner].append(row)
            for u, rows in by_underlying.items():
                self.cache.put_contracts(u, as_of, parse.contracts_table(rows, underlying=u, as_of=as_of, live=live))

    def prefetch_option_contracts(self, underlyings: Sequence[str], as_of: dt.date) -> None:
        """List the contracts of many underlyings in shared pages for the calls to come."""
        if not self.reuse:
            return
        self._require_session(as_of)
        tickers = sorted({require_ticker(u) for u in underlyings})
        self._list_contracts([u for u in tickers if self.cache.contracts(u, as_of) is None], as_of)

    def option_contracts(self, underlying: str, as_of: dt.date, *, expiry_lte: dt.date | None = None) -> pa.Table:
        require_ticker(underlying)
        self._require_session(as_of)
        if self.reuse:
            table = self.cache.contracts(underlying, as_of)
            if table is None:
                self._list_contracts([underlying], as_of)
                table = self.cache.contracts(underlying, as_of)
            assert table is not None
            if expiry_lte is not None:
                table = table.filter(pc.less_equal(table.column("expiry"), pa.scalar(expiry_lte, pa.date32())))
        else:
            live, statuses = self._statuses(as_of)
            rows = self._contract_rows([underlying], as_of, expiry_lte, statuses)
            table = parse.contracts_table(rows, underlying=underlying, as_of=as_of, live=live)
        if table.num_rows == 0:
            raise SymbolNotFoundError(
                f"no option contracts for {underlying} expiring on or after {as_of} at Alpaca; "
                "check the ticker (share classes use a dot, e.g. BRK.B)"
            )
        return table

    def option_chain(self, underlying: str, as_of: dt.date) -> ChainSnapshot:
        require_ticker(underlying)
        self._require_session(as_of)
        live = self.live_session()
        if as_of != live:
            raise UnsupportedDatasetError(
                f"Alpaca option-chain snapshots are live only: they show the market of session {live}, not {as_of}. "
                "Snapshot each session on its day, or use --provider synthetic for past sessions"
            )
        chain = (self.cache.chain(underlying, as_of, pop=True) if self.reuse else None) \
            or self._fetch_chain(underlying, as_of)
        try:
            contracts = self.option_contracts(underlying, as_of)
            oi = dict(zip(contracts.column("contract_symbol").to_pylist(),
                          contracts.column("open_interest").to_pylist(), strict=True))
        except SymbolNotFoundError:
            oi = {}
        return ChainSnapshot(underlying=underlying, as_of=as_of, spot=self._spot(underlying, as_of),
                             quoted_at=chain.quoted_at, table=parse.with_open_interest(chain.table, oi))

    def _fetch_chain(self, underlying: str, as_of: dt.date) -> CachedChain:
        """One chain snapshot (alpaca-py pages it at Alpaca's largest page, 1,000 contracts)."""
        request = OptionChainRequest(underlying_symbol=underlying, feed=OptionsFeed(self.options_feed))
        payload = self._call("option chain", lambda: self._client("option").get_option_chain(request))
        if not payload:
            raise SymbolNotFoundError(
                f"no option chain for {underlying} at Alpaca (feed {self.options_feed}); check the ticker"
            )
        table, quoted_at = parse.chain_table(payload, underlying=underlying, as_of=as_of, open_interest={},
                                             now=self._now().astimezone(dt.UTC))
        daily = parse.daily_bars(payload, underlying=underlying, as_of=as_of)
        return CachedChain(table=table, quoted_at=quoted_at, daily_bars=daily)

    def _spot(self, underlying: str, as_of: dt.date) -> float:
        session = self.cache.bars(underlying, as_of, as_of) if self.reuse else None
        if session is not None and session.num_rows:  # the candles this run fetched
            return float(session.column("close")[-1].as_py())
        bars = self.stock_bars([underlying], as_of - dt.timedelta(days=10), as_of)
        if bars.num_rows == 0:
            raise SymbolNotFoundError(
                f"no recent daily bars for {underlying} on feed {self.stock_feed}, so the chain has no spot; "
                "check the ticker"
            )
        return float(bars.column("close")[-1].as_py())

    def option_bars(self, contract_symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table:
        if start > end:
            raise UsageError(f"start {start} is after end {end}; give the range oldest first")
        symbols = sorted(set(contract_symbols))
        for s in symbols:
            parse_occ(s)
        tables: list[pa.Table] = []
        if self.reuse and start == end == self.live_session():
            tables, symbols = self._session_bars_from_chains(symbols, start)
        for chunk in _chunks(symbols, SYMBOLS_PER_REQUEST):
            request = OptionBarsRequest(symbol_or_symbols=chunk, timeframe=TimeFrame.Day,
                                        start=_start(start), end=_end(end))
            payload = self._call("option bars", functools.partial(self._client("option").get_option_bars, request))
            tables.append(parse.bars_table(payload, key_name="contract_symbol", start=start, end=end,
                                           what="option bars"))
        if not tables:
            return OPTION_BARS_SCHEMA.empty_table()
        return sorted_table(pa.concat_tables(tables), OPTION_BARS_SORT).combine_chunks()

    def _session_bars_from_chains(self, symbols: list[str], session: dt.date) -> tuple[list[pa.Table], list[str]]:
        """The live session's bars of ``symbols`` from their underlyings' chain snapshots (each
        fetched once and kept for ``option_chain``); returns them and the contracts left for the
        bars endpoint (underlying not known from this run's contracts, or not in the snapshot)."""
        by_underlying: dict[str, list[str]] = {}
        rest: list[str] = []
        for s in symbols:
            u = self.cache.underlying_of(s)
            (by_underlying.setdefault(u, []) if u is not None else rest).append(s)
        tables = []
        for u, wanted in by_underlying.items():
            chain = self.cache.chain(u, session)
            if chain is None:
                try:
                    chain = self._fetch_chain(u, session)
                except SymbolNotFoundError:
                    rest.extend(wanted)
                    continue
                self.cache.put_chain(u, session, chain)
            listed = chain.contracts
            rest.extend(s for s in wanted if s not in listed)
            bars = chain.daily_bars
            if bars.num_rows:
                mask = pc.is_in(bars.column("contract_symbol"), value_set=pa.array(wanted, pa.string()))
                tables.append(bars.filter(mask))
        return tables, sorted(rest)

    # -- check ------------------------------------------------------------------------------
    def check(self) -> ProviderCheck:
        """Probe the trading API, each stock feed and each options feed; never prints keys."""
        items: list[CheckItem] = []
        auth_failed = False
        contract: str | None = None
        today = self.live_session()

        def probe(name: str, fn: Callable[[], str]) -> bool:
            nonlocal auth_failed
            try:
                items.append(CheckItem(name=name, ok=True, detail=fn()))
                return True
            except AuthenticationError as e:
                auth_failed = auth_failed or getattr(e, "http_status", None) == 401
                items.append(CheckItem(name=name, ok=False, detail=redact(str(e))))
            except ProviderError as e:
                items.append(CheckItem(name=name, ok=False, detail=redact(str(e))))
            return False

        def trading() -> str:
            nonlocal contract
            rows = self._contract_rows([PROBE_SYMBOL], today, None, [AssetStatus.ACTIVE], limit=1, max_pages=1)
            contract = rows[0].get("symbol") if rows else None
            return f"option contracts answer ({'found ' + contract if contract else 'no contracts'})"

        probe("trading", trading)
        for feed in STOCK_FEEDS:
            def stock(feed: str = feed) -> str:
                request = StockBarsRequest(symbol_or_symbols=[PROBE_SYMBOL], timeframe=TimeFrame.Day,
                                           start=_start(today - dt.timedelta(days=10)), end=_end(today),
                                           feed=DataFeed(feed))
                payload = self._call("stock bars", lambda: self._client("stock").get_stock_bars(request))
                n = sum(len(v) for v in payload.values()) if isinstance(payload, dict) else 0
                return f"{n} daily bars of {PROBE_SYMBOL}" + (" (configured)" if feed == self.stock_feed else "")
            probe(f"stock feed {feed}", stock)
        for feed in OPTIONS_FEEDS:
            def option(feed: str = feed) -> str:
                if contract is None:
                    raise TerminalProviderError("skipped: no contract to quote")
                request = OptionLatestQuoteRequest(symbol_or_symbols=[contract], feed=OptionsFeed(feed))
                self._call("option quote", lambda: self._client("option").get_option_latest_quote(request))
                return f"latest quote of {contract}" + (" (configured)" if feed == self.options_feed else "")
            probe(f"options feed {feed}", option)
        ok = not auth_failed and any(i.ok for i in items)
        return ProviderCheck(provider=self.name, ok=ok, is_synthetic=False,
                             credentials_source=self._credentials.source, items=tuple(items))


__all__ = ["OPTIONS_FEEDS", "STOCK_FEEDS", "AlpacaProvider"]
