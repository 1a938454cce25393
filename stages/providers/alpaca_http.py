"""The one retry loop and rate limiter in front of every alpaca-py request.

alpaca-py retries 429 and 504 itself, three times with a fixed 3 s sleep, and gives no
constructor argument for it. :func:`install` switches that off on a client (``_retry = 0``
makes ``RESTClient._one_request`` raise ``APIError`` at once; ``_retry_wait = 0`` for good
measure; both read from alpaca/common/rest.py of 0.44) and wraps the client's ``get`` so that
*each HTTP request*, including every page of a paginated call, goes through :class:`Retrier`:

* a token bucket per endpoint (``requests_per_second``, burst of one second's worth), and one
  sliding window over all endpoints (``requests_per_minute``): never more requests in any 60 s
  than Alpaca's plan allows (200 a minute on the free plan), attempts and retries included;
* transient failures (HTTP 408, 429, 5xx, timeouts, refused connections) are retried by the one
  retry helper, ``ledger.retry``: exponential backoff with jitter, never sooner than the server's
  ``Retry-After``, until the next wait would exceed the budget (``retry_budget_seconds``); then
  ``TransientProviderError``;
* everything else is terminal and typed at once: 401/403 ``AuthenticationError``, 404
  ``SymbolNotFoundError``, other 4xx ``TerminalProviderError``, a non-JSON body
  ``MalformedResponseError``.

Classification is by HTTP status and exception type, never by message text. The clock, the
sleep and the jitter source are injected, so tests run the whole policy without sleeping.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import requests
from alpaca.common.exceptions import APIError

from ledger import retry
from ledger.errors import (
    AuthenticationError,
    MalformedResponseError,
    ProviderError,
    SymbolNotFoundError,
    TerminalProviderError,
    TransientProviderError,
)
from stages.providers.credentials import KEY_ID_VAR, SECRET_KEY_VAR, redact

log = logging.getLogger("stages.providers.alpaca")

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@attrs.define
class TokenBucket:
    """``rate`` requests per second with a burst of ``capacity``; ``acquire`` waits its turn."""

    rate: float
    capacity: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    _tokens: float = attrs.field(init=False, default=-1.0)
    _stamp: float = attrs.field(init=False, default=0.0)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def acquire(self) -> float:
        """Take one token, sleeping until there is one; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            if self._tokens < 0:
                self._tokens, self._stamp = self.capacity, now
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self.sleep(wait)
        return wait


@attrs.define
class WindowLimiter:
    """At most ``limit`` requests in any ``window`` seconds: the n-th request is not sent before
    the (n - limit)-th plus ``window``. ``acquire`` waits its turn (in order, thread-safe)."""

    limit: int
    window: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    _slots: deque[float] = attrs.field(init=False, factory=deque)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def acquire(self) -> float:
        """Book the next slot, sleeping until it comes; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            slot = now
            if len(self._slots) >= self.limit:
                slot = max(now, self._slots[-self.limit] + self.window)
            self._slots.append(slot)
            while len(self._slots) > self.limit:
                self._slots.popleft()
        wait = slot - now
        if wait > 0:
            self.sleep(wait)
        return wait


@attrs.define
class EndpointStats:
    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    throttled_seconds: float = 0.0


@attrs.define
class Retrier:
    """Runs a request with the rate limit and the retry budget described in the module doc; the
    retries are ``ledger.retry``'s (the one retry helper), with this module's classification."""

    budget_seconds: float
    requests_per_second: float
    requests_per_minute: float | None = None
    clock: Callable[[], float] = retry.monotonic
    sleep: Callable[[float], None] = retry.pause
    jitter: random.Random = attrs.field(factory=random.Random)
    base_delay: float = 0.5
    max_delay: float = 8.0
    buckets: dict[str, TokenBucket] = attrs.field(factory=dict)
    stats: dict[str, EndpointStats] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    window: WindowLimiter | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.requests_per_minute is not None:
            self.window = WindowLimiter(limit=max(1, int(self.requests_per_minute)), window=60.0,
                                        clock=self.clock, sleep=self.sleep)

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (every attempt of every endpoint)."""
        return sum(s.calls for s in self.stats.values())

    def _bucket(self, endpoint: str) -> TokenBucket:
        with self._lock:
            if endpoint not in self.buckets:
                rate = self.requests_per_second
                self.buckets[endpoint] = TokenBucket(rate=rate, capacity=max(1.0, rate), clock=self.clock, sleep=self.sleep)
                self.stats[endpoint] = EndpointStats()
            return self.buckets[endpoint]

    def run(self, endpoint: str, request: Callable[[], Any]) -> Any:
        bucket = self._bucket(endpoint)
        stats = self.stats[endpoint]

        def attempt() -> Any:
            stats.throttled_seconds += bucket.acquire()
            if self.window is not None:
                stats.throttled_seconds += self.window.acquire()
            stats.calls += 1
            try:
                return request()
            except Exception as exc:
                error = classify(exc, endpoint)
                if error is None:
                    raise
                if isinstance(error, TransientProviderError):
                    error.retry_after = _retry_after(exc)  # type: ignore[attr-defined]
                # An APIError's text is the server's body, which may echo anything: chain nothing
                # from it (our message already carries the status, endpoint and redacted detail).
                raise error from (None if isinstance(exc, APIError) else exc)

        def before_wait(failed: retry.Attempt) -> None:
            status = getattr(failed.error, "http_status", None)
            if status == 429:
                stats.rate_limited += 1
            elif status is not None and status >= 500:
                stats.server_errors += 1
            stats.retries += 1
            log.warning("%s: %s; retry %d in %.2fs", endpoint, redact(str(failed.error)), failed.number, failed.wait)

        def give_up(error: BaseException, attempts: int, elapsed: float) -> BaseException:
            status = getattr(error, "http_status", None)
            if status == 429:
                stats.rate_limited += 1
            elif status is not None and status >= 500:
                stats.server_errors += 1
            out = TransientProviderError(
                f"{endpoint}: still failing after {attempts} attempt(s) in {elapsed:.1f}s ({error}); "
                f"the retry budget is {self.budget_seconds:g}s. Try again later, lower "
                "[alpaca] requests_per_minute, or raise [alpaca] retry_budget_seconds"
            )
            out.__cause__ = error.__cause__
            return out

        return retry.call(
            attempt,
            transient=lambda e: isinstance(e, TransientProviderError),
            budget_seconds=self.budget_seconds,
            backoff=retry.Backoff(initial=self.base_delay, maximum=self.max_delay),
            not_before=lambda e: getattr(e, "retry_after", None),
            before_wait=before_wait,
            give_up=give_up,
            clock=self.clock,
            sleep=self.sleep,
            rng=self.jitter,
        )


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, APIError):
        try:
            return int(exc.status_code) if exc.status_code is not None else None
        except (TypeError, ValueError):
            return None
    return None


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if any."""
    response = getattr(exc, "response", None) if isinstance(exc, APIError) else None
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as dt

    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _server_message(exc: APIError) -> str:
    try:
        message = str(exc.message)
    except Exception:
        message = str(exc)[:200]
    return redact(message)


def classify(exc: BaseException, endpoint: str) -> ProviderError | None:
    """The typed error for ``exc`` (``None``: not a transport error, let it propagate).

    Errors made from an HTTP answer carry its status as ``http_status``.
    """
    error = _classify(exc, endpoint)
    if error is not None and not hasattr(error, "http_status"):
        error.http_status = _status(exc)  # type: ignore[attr-defined]
    return error


def _classify(exc: BaseException, endpoint: str) -> ProviderError | None:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, APIError):
        status = _status(exc)
        detail = _server_message(exc)
        if status in TRANSIENT_STATUS:
            return TransientProviderError(f"HTTP {status} from {endpoint}: {detail}")
        if status == 401:
            return AuthenticationError(
                f"Alpaca rejected the credentials (HTTP 401 on {endpoint}: {detail}); check {KEY_ID_VAR} and "
                f"{SECRET_KEY_VAR} (or the env file named by [alpaca] env_file), and that paper keys go to the "
                "paper trading URL"
            )
        if status == 403:
            return AuthenticationError(
                f"Alpaca refused access (HTTP 403 on {endpoint}: {detail}); check {KEY_ID_VAR} and {SECRET_KEY_VAR}, "
                "and that your plan includes the configured feed (stock_feed 'sip' and options_feed 'opra' need a "
                "subscription; 'iex' and 'indicative' do not)"
            )
        if status == 404:
            return SymbolNotFoundError(f"Alpaca has nothing at {endpoint} (HTTP 404: {detail}); check the symbol")
        if status is not None and 400 <= status < 500:
            return TerminalProviderError(
                f"Alpaca rejected the request to {endpoint} (HTTP {status}: {detail}); check the symbols, dates and feeds"
            )
        return TransientProviderError(f"HTTP {status} from {endpoint}: {detail}")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return MalformedResponseError(
            f"{endpoint} answered with a body that is not JSON; check that APCA_API_DATA_URL / APCA_API_BASE_URL "
            "point at Alpaca"
        )
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError):
        return TransientProviderError(f"{endpoint}: {type(exc).__name__} talking to Alpaca")
    return None


def _endpoint(client: Any, path: str) -> str:
    version = getattr(client, "_api_version", "")
    if path.startswith("/options/snapshots/"):
        path = "/options/snapshots/{underlying}"
    elif path.startswith("/options/contracts/"):
        path = "/options/contracts/{symbol}"
    return f"/{version}{path}" if version else path


MAX_PAGES_PER_REQUEST = 5_000


def install(client: Any, retrier: Retrier, *, timeout: float) -> Any:
    """Route ``client``'s requests through ``retrier``; switch off alpaca-py's own retries."""
    client._retry = 0  # RESTClient._one_request raises APIError instead of RetryException
    client._retry_wait = 0
    client._session.request = functools.partial(client._session.request, timeout=timeout)
    original_get = client.get
    # alpaca-py follows next_page_token itself; a server that repeats a token would loop forever.
    seen_tokens: dict[tuple[str, str], set[str]] = {}

    def get(path: str, data: Any = None, **kwargs: Any) -> Any:
        params = dict(data) if isinstance(data, dict) else data
        if isinstance(params, dict):
            request = (path, repr(sorted((k, str(v)) for k, v in params.items() if k != "page_token")))
            token = params.get("page_token")
            if token is None:
                seen_tokens[request] = set()
            else:
                tokens = seen_tokens.setdefault(request, set())
                if token in tokens or len(tokens) >= MAX_PAGES_PER_REQUEST:
                    seen_tokens.pop(request, None)
                    raise MalformedResponseError(
                        f"{_endpoint(client, path)}: Alpaca repeated page token {str(token)[:24]!r} "
                        f"(or sent more than {MAX_PAGES_PER_REQUEST} pages): a pagination loop; nothing was recorded"
                    )
                tokens.add(token)
        return retrier.run(_endpoint(client, path), lambda: original_get(path, params, **kwargs))

    client.get = get
    return client


__all__ = ["EndpointStats", "Retrier", "TokenBucket", "WindowLimiter", "classify", "install"]
