"""CoinGecko source: one batched /simple/price poll a minute, backfill from market_chart, search.

Every request goes through one ``Budget`` (per-minute and per-month counters, 429 blocks). The key
travels only in the ``x-cg-demo-api-key`` / ``x-cg-pro-api-key`` header and is registered with
``engine.redact`` so no log line, event or error can carry it. Third-party exceptions
(``requests``, ``json``) are translated here, once, into ``engine.errors``.

Bars: a quote's minute is the minute of its ``last_updated_at``; a value whose ``last_updated_at``
did not move is not a new observation, and a coin gets at most one bar per minute. On first sight
of a coin with no recent history (``last_bar_ts``), the last day from ``/coins/{id}/market_chart``
(~5-minute, uneven points) is resampled onto the minute grid and emitted with ``filled=True``.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from engine.api import CoinMatch
from engine.errors import ApiError, NetworkError, ParseError, RateLimited, SourceError
from engine.events import Bar, CoinsEvent, ErrorEvent, StatusEvent
from engine.ids import is_coin_id
from engine.redact import redact, register_secret, register_url_secrets
from engine.settings.config import Settings
from engine.sources.base import Emit, Source, ahead_of_clock
from engine.sources.budget import Budget, load_counts, plan_name, save_counts
from engine.sources.coins import symbol_of
from engine.sources.http import (
    DEADLINE,
    MAX_BODY,
    Answer,
    bounded_get,
    mount_deadline_adapter,
    where,
)
from engine.sources.retry import backoff_delay, clamp_delay, fmt_seconds, retry_after_seconds

log = logging.getLogger(__name__)

SOURCE = "coingecko"
USER_AGENT = "cryptotui/0.1 (+https://github.com/cryptotui)"

# What each documented error code means for the user, and what to do about it.
ERROR_CODES: dict[int, str] = {
    10002: (
        "CoinGecko wants an API key (code 10002): set COINGECKO_API_KEY, or use the free public "
        "API (COINGECKO_API_PLAN=demo, no --api-url)"
    ),
    10005: "this endpoint is not included in your CoinGecko plan (code 10005)",
    10010: (
        "a Pro API key was sent to the public API (code 10010): set COINGECKO_API_PLAN=pro so "
        "requests go to pro-api.coingecko.com"
    ),
    10011: (
        "a Demo API key was sent to the Pro API (code 10011): set COINGECKO_API_PLAN=demo (and "
        "drop --api-url) so requests go to api.coingecko.com"
    ),
    10012: (
        "the public/Demo API only serves the past 365 days of history (code 10012): ask for a "
        "shorter range or use a paid plan"
    ),
}


class BudgetExhausted(RateLimited):
    """The monthly allowance is used up: nothing is sent until the month turns."""

    title = "Request budget"


class _Stopped(Exception):
    """The stop event was set while waiting; unwinds a cycle quietly."""


def _find(body: Any, key: str, depth: int = 0) -> Any:
    # Error bodies nest differently by era: {"status": {...}}, {"error": {"status": {...}}},
    # {"error_code": .., "status": {...}}; look a few levels down.
    if not isinstance(body, dict) or depth > 3:
        return None
    if key in body:
        return body[key]
    for value in body.values():
        found = _find(value, key, depth + 1)
        if found is not None:
            return found
    return None


def _connection_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "reset" in text or "aborted" in text:
        return "connection reset"
    if "remotedisconnected" in text or "without response" in text:
        return "connection closed without an answer"
    if "name or service" in text or "nameresolution" in text or "getaddrinfo" in text:
        return "cannot resolve the API host (DNS)"
    if "ssl" in text or "certificate" in text:
        return "TLS/certificate error"
    return "cannot connect"


def _looks_html(resp: Answer) -> bool:
    ctype = resp.headers.get("content-type", "").lower()
    return "html" in ctype or resp.body.lstrip()[:1] == b"<"


def resample_minutes(
    points: Sequence[tuple[float, float]],
    *,
    after: int | None = None,
    before: int | None = None,
    max_gap: float = 900.0,
) -> list[tuple[int, float]]:
    """Uneven ``(unix_seconds, price)`` points -> ``(minute_ts, price)`` on the minute grid.

    A minute's price is the linear interpolation at the minute's close (its last point's own
    value for the final minute). Only minutes ``> after`` and ``< before`` are returned, and no
    minute whose bracketing points are more than ``max_gap`` seconds apart: gaps stay gaps.
    """
    pts = sorted({float(t): float(p) for t, p in points}.items())
    if len(pts) < 2:
        return []
    times = [t for t, _ in pts]
    first_t, last_t = times[0], times[-1]
    start = int(first_t // 60) * 60
    end = int(last_t // 60) * 60
    if after is not None:
        start = max(start, after + 60)
    if before is not None:
        end = min(end, before - 60)
    out: list[tuple[int, float]] = []
    for minute in range(start, end + 1, 60):
        at = min(minute + 60.0, last_t)
        # The bracket [t0, t1] with t0 < at <= t1 (a point exactly at the close is that close).
        i = min(max(bisect.bisect_left(times, at) - 1, 0), len(pts) - 2)
        (t0, p0), (t1, p1) = pts[i], pts[i + 1]
        if t1 - t0 > max_gap or t1 <= t0:
            continue
        w = (at - t0) / (t1 - t0)
        out.append((minute, p0 + (p1 - p0) * w))
    return out


class CoinGeckoSource(Source):
    """Polls CoinGecko for the watched coins; see the module docstring for the rules it keeps."""

    name = SOURCE

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        last_bar_ts: Callable[[str], int | None] | None = None,
        budget: Budget | None = None,
        rng: Callable[[], float] = random.random,
        timeout: tuple[float, float] = (3.05, 10.0),
        deadline: float = DEADLINE,
        max_body: int = MAX_BODY,
        monotonic: Callable[[], float] = time.monotonic,
        backfill_after: float = 3600.0,
        max_fill_gap: float = 900.0,
        stale_after: float = 180.0,
        budget_file: Path | None = None,
    ) -> None:
        register_secret(settings.api_key)
        register_url_secrets(settings.base_url)
        self.settings = settings
        self.base_url = settings.base_url
        self.vs = settings.vs.lower()
        self.plan = plan_name(settings)
        self._key = settings.api_key
        self._session = session or requests.Session()
        mount_deadline_adapter(self._session)  # lets the deadline cut a request stuck in headers
        self._clock = clock
        self._sleep = sleep
        self._last_bar_ts = last_bar_ts
        # budget_file keeps the monthly count across restarts (the engine passes one in the
        # data dir); without it a restart would forget what the month has used.
        self._budget_file = budget_file
        self.budget = budget or Budget.for_settings(
            settings, clock=clock, **load_counts(budget_file)
        )
        self._saved_budget: dict[str, Any] = self.budget.state()
        self._http_lock = threading.Lock()  # the poller and a search worker share one session
        self._rng = rng
        self._timeout = timeout
        # The deadline runs on the monotonic clock: the injected clock may be a simulation that
        # does not move while a real socket is read.
        self._deadline = deadline
        self._max_body = max_body
        self._monotonic = monotonic
        self._backfill_after = backfill_after
        self._max_fill_gap = max_fill_gap
        self._stale_after = stale_after
        self._emit: Emit = lambda _item: None
        self._host = where(self.base_url)  # host:port only: never a user:password@ part
        # Owned by the run() thread only.
        self._last_seen: dict[str, int] = {}  # newest last_updated_at turned into a bar
        self._last_minute: dict[str, int] = {}  # newest bar minute emitted (or already stored)
        self._checked: set[str] = set()  # coins whose backfill is decided
        self._backfill_tries: dict[str, int] = {}
        self._not_found: set[str] = set()  # 404 on market_chart
        self._coins_state: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._last_status: StatusEvent | None = None
        self._last_update: float | None = None
        self._quotes: dict[str, tuple[float, int]] = {}
        self._future_note = ""  # coins refused this poll for a time ahead of the clock

    # -- HTTP -----------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """Request headers; the key (if any) goes here and nowhere else."""
        h = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self._key:
            name = "x-cg-pro-api-key" if self.plan == "pro" else "x-cg-demo-api-key"
            h[name] = self._key
        return h

    def _wait(self, seconds: float, stop: threading.Event | None) -> bool:
        """Wait ``seconds`` (on the stop event, or the injected sleep); False once stopped."""
        seconds = min(seconds, 40 * 86400.0)  # a lock's timeout overflows far beyond this
        if seconds > 0:
            if self._sleep is not None:
                self._sleep(seconds)
            elif stop is not None:
                stop.wait(seconds)
            else:
                threading.Event().wait(seconds)
        return stop is None or not stop.is_set()

    def _reserve(self, stop: threading.Event | None, max_wait: float | None) -> None:
        while True:
            r = self.budget.reserve()
            if r.granted:
                return
            if r.reason == "month":
                raise BudgetExhausted(
                    f"the monthly budget of {self.budget.limit_month} calls is used up; CoinGecko "
                    f"polling resumes in {fmt_seconds(r.wait)} (raise calls_per_month if your plan "
                    "allows more)",
                    retry_after=r.wait,
                )
            if max_wait is not None and r.wait > max_wait:
                raise RateLimited(
                    f"request budget busy, try again in {fmt_seconds(r.wait)}", retry_after=r.wait
                )
            if r.wait > 2 and stop is not None:
                what = "rate limited" if r.reason == "blocked" else "waiting for the request budget"
                self._status(
                    "rate limited",
                    f"{what}, next call in {fmt_seconds(r.wait)}",
                    next_update=self._clock() + r.wait,
                )
            if not self._wait(r.wait, stop):
                raise _Stopped

    def _get(
        self,
        path: str,
        params: dict[str, str],
        *,
        what: str,
        stop: threading.Event | None = None,
        max_wait: float | None = None,
    ) -> Any:
        """One budgeted GET returning decoded JSON, or a ``SourceError`` with a readable reason."""
        self._reserve(stop, max_wait)
        url = self.base_url + path
        log.debug("GET %s %s", path, params)
        try:
            with self._http_lock:
                resp = bounded_get(
                    self._session,
                    url,
                    params=params,
                    headers=self.headers(),
                    timeout=self._timeout,
                    who=f"CoinGecko ({self._host})",
                    deadline=self._deadline,
                    max_body=self._max_body,
                    monotonic=self._monotonic,
                )
        except ApiError as exc:  # a redirect refused
            raise ApiError(f"{what}: {exc.msg}", status=exc.status) from None
        except (NetworkError, ParseError) as exc:  # over the size cap or the deadline
            raise type(exc)(f"{what}: {exc.msg}") from None
        except requests.Timeout:
            raise NetworkError(
                f"{what}: no answer from {self._host} within {self._timeout[1]:g} s"
            ) from None
        except requests.ConnectionError as exc:
            raise NetworkError(f"{what}: {_connection_reason(exc)}") from None
        except requests.RequestException as exc:
            raise NetworkError(f"{what}: {redact(exc.__class__.__name__)}") from None
        return self._decode(resp, what)

    def _decode(self, resp: Answer, what: str) -> Any:
        status = resp.status
        valid = True
        try:
            body = json.loads(resp.body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested beyond the stack
            body, valid = None, False
        if status == 429:
            wait = retry_after_seconds(resp.headers, self._clock())
            if wait is not None:
                self.budget.block_for(wait)
            page = " (an HTML page)" if body is None and _looks_html(resp) else ""
            when = f", retry in {fmt_seconds(wait)}" if wait is not None else ""
            raise RateLimited(
                f"{what}: CoinGecko rate limit (HTTP 429{page}){when}", retry_after=wait
            )
        if status >= 400:
            code = _find(body, "error_code")
            code = code if isinstance(code, int) and not isinstance(code, bool) else None
            if code in ERROR_CODES:
                msg = ERROR_CODES[code]
            elif status in (401, 403):
                msg = (
                    f"CoinGecko refused the request (HTTP {status}): check COINGECKO_API_KEY and "
                    "COINGECKO_API_PLAN"
                )
            elif status == 404:
                msg = f"{what}: not found (HTTP 404)"
            else:
                kind = "server error" if status >= 500 else "error"
                page = ", an HTML error page" if body is None and _looks_html(resp) else ""
                msg = f"{what}: CoinGecko {kind} (HTTP {status}{page})"
            raise ApiError(redact(msg, self._key), status=status, code=code)
        if valid and not isinstance(body, (dict, list)):
            raise ParseError(
                f"{what}: unexpected shape of the response (a JSON {type(body).__name__})"
            )
        if body is None:
            if _looks_html(resp):
                raise ParseError(f"{what}: got an HTML page instead of JSON (HTTP {status})")
            raise ParseError(f"{what}: the response is not valid JSON (truncated?)")
        return body

    # -- the poll loop ----------------------------------------------------------------------

    def run(self, coins: Callable[[], tuple[str, ...]], emit: Emit, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; errors become status and error events, never exceptions."""
        self._emit = emit
        failures = 0
        last_error = ""
        self._status("connecting", f"connecting to {self._host}")
        next_poll = self._clock()
        while not stop.is_set():
            self._save_budget()
            if not self._wait(next_poll - self._clock(), stop):
                break
            started = self._clock()
            try:
                self._cycle(tuple(coins()), stop)
            except _Stopped:
                break
            except RateLimited as exc:
                failures += 1
                wait = exc.retry_after
                if wait is None:
                    wait = backoff_delay(failures - 1, base=10.0, cap=600.0, rng=self._rng)
                    self.budget.block_for(wait)
                # Whatever a server said, the poller wakes within the sane range and goes on; a
                # spent month may wait for the month to turn.
                month = isinstance(exc, BudgetExhausted)
                wait = clamp_delay(wait, high=40 * 86400.0 if month else 3600.0)
                next_poll = self._clock() + wait
                if isinstance(exc, BudgetExhausted):
                    self._status("rate limited", exc.msg, next_update=next_poll)
                else:
                    self._status(
                        "rate limited",
                        f"rate limited, retrying in {fmt_seconds(wait)}{self._age_note()}",
                        next_update=next_poll,
                    )
                if exc.msg != last_error:
                    log.warning("%s", redact(exc.msg))
                    if isinstance(exc, BudgetExhausted):
                        self._emit(ErrorEvent(title=exc.title, msg=exc.msg))
                    last_error = exc.msg
                continue
            except SourceError as exc:
                failures += 1
                # A 4xx other than 429 will not heal by retrying soon (bad key, wrong host).
                permanent = isinstance(exc, ApiError) and (exc.status or 500) < 500
                if permanent:
                    wait = 300.0
                else:
                    wait = backoff_delay(failures - 1, base=2.0, cap=120.0, rng=self._rng)
                next_poll = self._clock() + wait
                state = "offline" if isinstance(exc, NetworkError) else "error"
                msg = redact(exc.msg, self._key)
                self._status(
                    state,
                    f"{state}: {msg}, retrying in {fmt_seconds(wait)}{self._age_note()}",
                    next_update=next_poll,
                )
                if msg != last_error:
                    log.warning("%s", msg)
                    self._emit(ErrorEvent(title=exc.title, msg=msg))
                    last_error = msg
                continue
            except Exception as exc:  # a bug must not silently kill the poller: say so, go on
                failures += 1
                log.exception("CoinGecko poll failed unexpectedly")
                wait = backoff_delay(failures - 1, base=5.0, cap=300.0, rng=self._rng)
                next_poll = self._clock() + wait
                msg = f"internal error ({exc.__class__.__name__}), see the log"
                self._status(
                    "error", f"error: {msg}, retrying in {fmt_seconds(wait)}", next_update=next_poll
                )
                self._emit(ErrorEvent(title="Data source", msg=msg))
                continue
            failures = 0
            last_error = ""
            # Keep a fixed cadence from the poll's start so slow answers do not drift the grid.
            next_poll = max(started + self.settings.poll_seconds, self._clock() + 1.0)
            self._status_after_poll(next_poll)
        self._save_budget()
        self._status("offline", "stopped")

    def _cycle(self, ids: tuple[str, ...], stop: threading.Event) -> None:
        # A coin dropped from the watchlist and added back later gets its gap checked again.
        self._checked &= set(ids)
        if not ids:
            self._quotes = {}
            return
        data = self._get(
            "/simple/price",
            {"ids": ",".join(ids), "vs_currencies": self.vs, "include_last_updated_at": "true"},
            what="prices",
            stop=stop,
        )
        if not isinstance(data, dict):
            raise ParseError("prices: the response has an unexpected shape")
        quotes: dict[str, tuple[float, int]] = {}
        bad = 0
        future: list[str] = []
        now = self._clock()
        for coin in ids:
            entry = data.get(coin)
            if entry is None:
                continue
            quote_ = self._parse_quote(entry)
            if quote_ is None:
                bad += 1
                log.warning("prices: unexpected entry for %s", coin)
                continue
            ahead = ahead_of_clock(quote_[1], now)
            if ahead is not None:
                # Stored, such a bar would sort after every real one and block them all.
                future.append(f"{coin}'s time is {ahead}")
                continue
            quotes[coin] = quote_
        self._future_note = ""
        if future:
            self._future_note = f"{', '.join(future)}: refused (check the system clock)"
            log.warning("prices: %s", self._future_note)
            if not quotes:
                raise ParseError(f"prices: {self._future_note}")
        if bad and not quotes:
            raise ParseError("prices: the response has an unexpected shape")
        absent = {c for c in ids if c not in data}
        self._update_coins(ids, absent)
        for coin, (price, updated) in quotes.items():
            if coin in self._not_found:
                continue
            if coin not in self._checked:
                self._first_sight(coin, price, updated, stop)
                if coin in self._not_found:
                    continue
            self._emit_live(coin, price, updated)
        self._update_coins(ids, absent)
        self._quotes = quotes

    def _parse_quote(self, entry: Any) -> tuple[float, int] | None:
        if not isinstance(entry, dict):
            return None
        price, updated = entry.get(self.vs), entry.get("last_updated_at")
        if isinstance(price, bool) or not isinstance(price, (int, float)):
            return None
        if isinstance(updated, bool) or not isinstance(updated, (int, float)):
            return None
        if not math.isfinite(price) or price <= 0 or not math.isfinite(updated) or updated <= 0:
            return None
        return float(price), int(updated)

    def _emit_live(self, coin: str, price: float, updated: int) -> None:
        if updated <= self._last_seen.get(coin, -1):
            return  # last_updated_at did not move: the same observation again
        self._last_seen[coin] = updated
        minute = updated // 60 * 60
        if minute <= self._last_minute.get(coin, -1):
            return  # one bar per coin per minute
        self._last_minute[coin] = minute
        self._emit(Bar(coin=coin, ts=minute, price=price, source=SOURCE))
        self._last_update = max(self._last_update or 0.0, float(updated))

    def _first_sight(self, coin: str, price: float, updated: int, stop: threading.Event) -> None:
        stored = self._last_bar_ts(coin) if self._last_bar_ts else None
        if stored is not None and ahead_of_clock(stored, self._clock()) is not None:
            # A store poisoned before the engine repaired such rows must not block every new bar.
            log.warning("%s: the newest stored minute is in the future; ignored", coin)
            stored = None
        if stored is not None:
            self._last_minute[coin] = max(self._last_minute.get(coin, -1), int(stored))
        live_minute = updated // 60 * 60
        if stored is not None and live_minute - stored <= self._backfill_after:
            self._checked.add(coin)
            return
        try:
            self._backfill(coin, price, updated, stored, stop)
        except ApiError as exc:
            if exc.status == 404:
                self._not_found.add(coin)
            else:
                self._backfill_failed(coin, exc)
        except (NetworkError, ParseError) as exc:
            self._backfill_tries[coin] = self._backfill_tries.get(coin, 0) + 1
            if self._backfill_tries[coin] < 3:
                raise  # transient: the whole cycle is retried after a backoff
            self._backfill_failed(coin, exc)
        else:
            self._checked.add(coin)

    def _backfill_failed(self, coin: str, exc: SourceError) -> None:
        self._checked.add(coin)
        reason = redact(exc.msg, self._key)
        msg = f"could not load the last day of {coin}: {reason}; live prices only"
        log.warning("%s", msg)
        self._emit(ErrorEvent(title="History", msg=msg, coin=coin))

    def _backfill(
        self, coin: str, price: float, updated: int, stored: int | None, stop: threading.Event
    ) -> None:
        data = self._get(
            f"/coins/{quote(coin, safe='')}/market_chart",
            {"vs_currency": self.vs, "days": "1"},
            what=f"history of {coin}",
            stop=stop,
        )
        raw = data.get("prices") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise ParseError(f"history of {coin}: the response has an unexpected shape")
        points: list[tuple[float, float]] = []
        # days=1 asks for a day; anything older than a little more than that is not needed, and
        # bounding it keeps the minute grid below (one step per minute) short whatever was sent.
        oldest = updated - 2 * 86400
        for item in raw:
            if (
                isinstance(item, (list, tuple))
                and len(item) >= 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item[:2])
                and math.isfinite(item[0])
                and math.isfinite(item[1])
                and item[1] > 0
            ):
                t = item[0] / 1000.0
                # `updated` was checked against the clock: a point after it is from the future.
                if oldest <= t < updated:
                    points.append((t, float(item[1])))
        # The live quote is a real observation: anchor the last stretch to it.
        points.append((float(updated), price))
        after = max(stored, oldest - 60) if stored is not None else oldest - 60
        bars = resample_minutes(
            points, after=after, before=updated // 60 * 60, max_gap=self._max_fill_gap
        )
        for ts, value in bars:
            self._emit(Bar(coin=coin, ts=ts, price=value, source=SOURCE, filled=True))
        if bars:
            self._last_minute[coin] = max(self._last_minute.get(coin, -1), bars[-1][0])
        log.info("backfilled %d minutes of %s", len(bars), coin)

    def _save_budget(self) -> None:
        if self._budget_file is None:
            return
        state = self.budget.state()
        if state == self._saved_budget:
            return
        try:
            save_counts(self._budget_file, state)
            self._saved_budget = state
        except OSError as exc:
            log.warning("cannot save the request budget to %s: %s", self._budget_file, exc.strerror)

    # -- events -----------------------------------------------------------------------------

    def _update_coins(self, ids: tuple[str, ...], absent: set[str]) -> None:
        unknown = tuple(c for c in ids if c in absent or c in self._not_found)
        state = (ids, unknown)
        if state == self._coins_state:
            return
        before = set(self._coins_state[1]) if self._coins_state else set()
        self._coins_state = state
        labels = tuple((c, symbol_of(c)) for c in ids)
        self._emit(CoinsEvent(coins=ids, unknown=unknown, labels=labels))
        for coin in unknown:
            if coin not in before:
                msg = (
                    f"CoinGecko does not know the coin id {coin!r}; search for it by name or symbol"
                )
                log.warning("%s", msg)
                self._emit(ErrorEvent(title="Unknown coin", msg=msg, coin=coin))

    def _status(self, state: str, message: str, *, next_update: float | None = None) -> None:
        calls_minute, calls_month = self.budget.counts()
        event = StatusEvent(
            source=SOURCE,
            state=state,
            message=redact(message, self._key),
            last_update=self._last_update,
            next_update=next_update,
            calls_minute=calls_minute,
            calls_month=calls_month,
            limit_minute=self.budget.limit_minute,
            limit_month=self.budget.limit_month,
        )
        if event != self._last_status:
            self._last_status = event
            self._emit(event)

    def _age_note(self) -> str:
        """``"; data is 5 min old"`` while failures keep the last good data from being fresh."""
        if self._last_update is None:
            return ""
        age = self._clock() - self._last_update
        return f"; data is {fmt_seconds(age)} old" if age > self._stale_after else ""

    def _status_after_poll(self, next_poll: float) -> None:
        quotes = self._quotes
        if not quotes:
            unknown = self._coins_state[1] if self._coins_state else ()
            msg = "no coins to watch" if not unknown else "no known coins to watch"
            self._status("ok", msg, next_update=next_poll)
            return
        now = self._clock()
        ages = {coin: now - updated for coin, (_, updated) in quotes.items()}
        stale = sorted(c for c, age in ages.items() if age > self._stale_after)
        if len(stale) == len(ages):
            newest = min(ages.values())
            self._status("stale", f"data is {fmt_seconds(newest)} old", next_update=next_poll)
        elif stale:
            oldest = max(ages[c] for c in stale)
            names = ", ".join(stale)
            self._status("ok", f"{names}: data is {fmt_seconds(oldest)} old", next_update=next_poll)
        else:
            n = len(quotes)
            note = f"; {self._future_note}" if self._future_note else ""
            self._status(
                "ok", f"live: {n} coin{'' if n == 1 else 's'}{note}", next_update=next_poll
            )

    # -- search ------------------------------------------------------------------------------

    def search(self, query: str) -> list[CoinMatch]:
        """Coins matching ``query`` by name or symbol (one budgeted ``/search`` call)."""
        q = query.strip()
        if not q:
            return []
        data = self._get("/search", {"query": q}, what="search", max_wait=10.0)
        rows = data.get("coins") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ParseError("search: the response has an unexpected shape")
        out: list[CoinMatch] = []
        dropped = 0
        for row in rows:
            if not isinstance(row, dict):
                continue
            if not is_coin_id(row.get("id")):
                # An id outside CoinGecko's alphabet ("../x", "a\n") would later name files.
                dropped += 1
                continue
            rank = row.get("market_cap_rank")
            out.append(
                CoinMatch(
                    id=row["id"],
                    name=str(row.get("name") or row["id"]),
                    symbol=str(row.get("symbol") or "").upper(),
                    rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
                )
            )
        if dropped:
            log.warning(
                "search %r: dropped %d results whose id is not a valid coin id", q[:40], dropped
            )
        return out


__all__ = ["ERROR_CODES", "BudgetExhausted", "CoinGeckoSource", "resample_minutes"]
