"""News feeds: poll RSS/Atom safely, read new items for deals, record them as candidates."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import io
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import feedparser
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from pydantic import ValidationError

from bot.errors import UserInputError
from bot.settings import Settings
from events.envelope import NewEvent
from events.extract import extract_candidates
from events.matching import match_candidate
from events.parties import default_registry
from events.payloads import CandidateDeal, CandidateProposed
from store.clock import Clock
from store.errors import StoreError
from store.facade import AsyncEventStore
from store.feeds_state import FeedState, FeedStateStore
from store.queries import Queries

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 3
MAX_FAILURES = 5
PAUSE = timedelta(hours=24)
MAX_BACKOFF = timedelta(hours=6)
# A server may ask for a day's rest, not a month's: beyond that we treat it as an error.
MAX_RETRY_AFTER = timedelta(hours=24)
USER_AGENT = "computewatch/0.1 (+https://github.com/computewatch; feed reader)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)
# Entity declarations are how "billion laughs" and external-entity attacks work; no news feed
# needs them. A DOCTYPE with an internal subset ("[") is where they would be declared.
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_DOCTYPE_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s,]+")


class Notifier(Protocol):
    """Where the poller reports what analysts must know (the Discord review channel)."""

    async def notify(self, text: str) -> None:
        """A notice for the operators, e.g. that a feed was paused."""
        ...

    async def propose(self, candidates: Sequence[FoundCandidate]) -> None:
        """New candidates were recorded (they are in the log): put them up for review."""
        ...


class LogNotifier:
    """A notifier that only logs: without Discord, analysts review with the console or the CLI."""

    async def notify(self, text: str) -> None:
        log.warning("feed notice: %s", text)

    async def propose(self, candidates: Sequence[FoundCandidate]) -> None:
        log.warning(
            "%d new feed candidate(s) wait for review (`computewatch review` lists them)",
            len(candidates),
        )


class RelayNotifier:
    """Forwards to the notifier attached now (the Discord bot, while it runs), else to the
    fallback; the poller can start before the bot and outlive it."""

    def __init__(self, fallback: Notifier | None = None) -> None:
        self.fallback: Notifier = fallback or LogNotifier()
        self.target: Notifier | None = None

    def attach(self, target: Notifier | None) -> None:
        self.target = target

    async def notify(self, text: str) -> None:
        await (self.target or self.fallback).notify(text)

    async def propose(self, candidates: Sequence[FoundCandidate]) -> None:
        await (self.target or self.fallback).propose(candidates)


class FeedError(Exception):
    """Raised when a feed cannot be fetched or read; the poll counts it as a failure."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class UnsafeFeedError(FeedError):
    """Raised when a feed document declares entities or a DTD subset (entity expansion)."""


# -- pure helpers ----------------------------------------------------------------------------


def parse_feed_urls(text: str) -> list[str]:
    """Feed URLs from a comma- or whitespace-separated setting, in order, without repeats."""
    urls = [u for u in _SEPARATORS.split(text.strip()) if u]
    for url in urls:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"feed URL {url!r} is not http(s)")
    return list(dict.fromkeys(urls))


def normalise_url(url: str) -> str:
    """The article URL as a dedup key: lowercased scheme and host, no fragment, no utm_* params,
    no default port, no trailing slash."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith("utm_")
        ]
    )
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, host, path, query, ""))


def feed_host(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "unknown").lower()
    return f"{host}:{parts.port}" if parts.port else host


def candidate_stream(article_url: str, index: int) -> str:
    """`candidate:<sha256 of the normalised URL and the deal's index in the article>`."""
    digest = hashlib.sha256(f"{normalise_url(article_url)}#{index}".encode()).hexdigest()
    return f"candidate:{digest}"


def check_safe_xml(body: bytes) -> None:
    """Raise UnsafeFeedError for a document that declares entities or an internal DTD subset."""
    probes = [body]
    # The checks are byte patterns: look at UTF-16/32 documents in their own encoding too.
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:64]:
        for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
            try:
                probes.append(body.decode(encoding).encode("utf-8"))
            except UnicodeDecodeError:
                continue
    for probe in probes:
        if _ENTITY.search(probe) or _DOCTYPE_SUBSET.search(probe):
            raise UnsafeFeedError("the feed declares XML entities or a DTD subset; refused")
    try:
        SafeET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeFeedError(f"the feed is unsafe XML ({type(exc).__name__}); refused") from exc
    except (SafeET.ParseError, LookupError):
        # Not well-formed, or in an encoding Python does not know: feedparser's lenient parser
        # may still read it (or refuses it as not a feed).
        pass


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment, without scripts and styles."""

    BLOCKS = frozenset({"p", "br", "div", "li", "h1", "h2", "h3", "h4", "tr", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(fragment: str) -> str:
    """Plain text of an HTML fragment (entities decoded, tags dropped, blank runs squeezed)."""
    parser = _TextOnly()
    parser.feed(fragment)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


@dataclass(frozen=True)
class FeedItem:
    """One entry of a feed, as read: keys for dedup, the article URL and its plain text."""

    entry_id: str | None
    url: str
    title: str | None
    text: str
    published: date | None

    def keys(self, feed_url: str) -> list[str]:
        keys = [f"url:{normalise_url(self.url)}"]
        if self.entry_id:
            keys.insert(0, f"id:{feed_url} {self.entry_id}")
        return keys


def parse_items(body: bytes, feed_url: str) -> list[FeedItem]:
    """The entries of a safe feed document; raises FeedError when it is not a feed at all."""
    check_safe_xml(body)
    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-location": feed_url},
        sanitize_html=True,
        resolve_relative_uris=True,
    )
    entries: list[Any] = list(parsed.get("entries") or [])
    if parsed.get("bozo") and not entries:
        exc = parsed.get("bozo_exception")
        raise FeedError(f"not a readable feed: {type(exc).__name__ if exc else 'unknown'}: {exc}")
    items = []
    for entry in entries:
        url = entry.get("link") or ""
        entry_id = entry.get("id") or None
        if not url and entry_id and entry_id.startswith(("http://", "https://")):
            url = entry_id
        if not url.startswith(("http://", "https://")):
            log.info("feed %s: skipping an entry without an article URL (%r)", feed_url, entry_id)
            continue
        title = strip_html(entry.get("title") or "") or None
        bodies = [c.get("value") or "" for c in entry.get("content") or []]
        bodies.append(entry.get("summary") or "")
        text_body = strip_html(max(bodies, key=len))
        text = "\n\n".join(t for t in (title and title.rstrip(".") + ".", text_body) if t)
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        published = date(stamp.tm_year, stamp.tm_mon, stamp.tm_mday) if stamp else None
        items.append(
            FeedItem(entry_id=entry_id, url=url, title=title, text=text, published=published)
        )
    return items


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds or an HTTP date) as a delay, capped at MAX_RETRY_AFTER."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²", which isdigit() but int() refuses
        # Capped before timedelta, which overflows past ~2.7 million years of seconds.
        delay = timedelta(seconds=min(int(value), MAX_RETRY_AFTER.total_seconds()))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = when - now
    return max(timedelta(0), min(delay, MAX_RETRY_AFTER))


# -- the poller ------------------------------------------------------------------------------


@dataclass
class FoundCandidate:
    stream_id: str
    article_url: str
    lab: str
    kind: str
    action: str
    deal_id: str | None


@dataclass
class FeedReport:
    """What one poll of one feed did (what `computewatch feeds poll --once` prints)."""

    feed_url: str
    outcome: str = "ok"  # ok | not_modified | error | skipped | paused
    http_status: int | None = None
    items: int = 0
    new_items: int = 0
    candidates: list[FoundCandidate] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        head = f"{self.feed_url}: {self.outcome}"
        if self.http_status is not None:
            head += f" (HTTP {self.http_status})"
        head += f", {self.new_items} new of {self.items} items, {len(self.candidates)} candidates"
        return head


class FeedPoller:
    """Polls feeds over one shared ClientSession and records what they report as candidates.

    Idempotent: an item is read once (by entry id and by normalised URL, remembered in the
    database), and each candidate has a stable stream and idempotency key.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        store: AsyncEventStore,
        *,
        clock: Clock,
        notifier: Notifier | None = None,
        interval: timedelta = timedelta(minutes=15),
        max_bytes: int = MAX_BYTES,
        max_failures: int = MAX_FAILURES,
        pause: timedelta = PAUSE,
    ) -> None:
        self.session = session
        self.store = store
        self.state = FeedStateStore(store.store)
        self.clock = clock
        self.notifier: Notifier = notifier or LogNotifier()
        self.interval = interval
        self.max_bytes = max_bytes
        self.max_failures = max_failures
        self.pause = pause
        self._locks: dict[str, asyncio.Lock] = {}
        self._running: set[asyncio.Task[Any]] = set()

    async def poll_all(self, feed_urls: Sequence[str], *, force: bool = False) -> list[FeedReport]:
        """Poll every feed once, concurrently; `force` ignores backoff and pauses."""
        return list(await asyncio.gather(*(self.poll_feed(u, force=force) for u in feed_urls)))

    async def poll_feed(self, feed_url: str, *, force: bool = False) -> FeedReport:
        """Poll one feed (the scheduled job): never raises, except on cancellation."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        lock = self._locks.setdefault(feed_url, asyncio.Lock())
        async with lock:
            report = FeedReport(feed_url=feed_url)
            try:
                await self._poll(feed_url, report, force)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a job's boundary: log, record, carry on
                log.exception("feed job failed for %s", feed_url)
                report.outcome = "error"
                report.errors.append(f"{type(exc).__name__}: {exc}")
            return report

    async def drain(self, grace_s: float = 5.0) -> None:
        """Let the polls in flight finish for up to `grace_s` seconds, then cancel the rest, so
        that the session and the writer close after them."""
        running = {t for t in self._running if t is not asyncio.current_task()}
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _poll(self, feed_url: str, report: FeedReport, force: bool) -> None:
        state = await self.store.read(self.state.get, feed_url)
        now = self.clock.now()
        if not force:
            if state.paused_until and now < state.paused_until:
                report.outcome = "paused"
                return
            if state.next_poll_at and now < state.next_poll_at:
                report.outcome = "skipped"
                return
        try:
            status, body, headers = await self._fetch(feed_url, state)
        except FeedError as exc:
            await self._failed(state, report, exc)
            return
        report.http_status = status
        if status == 304:
            report.outcome = "not_modified"
            await self._succeeded(state, status, headers)
            return
        try:
            items = await asyncio.to_thread(parse_items, body, feed_url)
        except FeedError as exc:
            exc.status = status
            await self._failed(state, report, exc)
            return
        report.items = len(items)
        await self._record_items(feed_url, items, report)
        await self._succeeded(state, status, headers)

    async def _fetch(self, feed_url: str, state: FeedState) -> tuple[int, bytes, dict[str, str]]:
        headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        try:
            async with self.session.get(
                feed_url, headers=headers, allow_redirects=True, max_redirects=MAX_REDIRECTS
            ) as resp:
                kept = {
                    k: v for k, v in resp.headers.items() if k.lower() in ("etag", "last-modified")
                }
                if resp.status == 304:
                    return 304, b"", kept
                if resp.status in (429, 503) or resp.status >= 400:
                    wait = retry_after(resp.headers.get("Retry-After"), self.clock.now())
                    raise FeedError(
                        f"HTTP {resp.status} {resp.reason or ''}".strip(),
                        status=resp.status,
                        retry_after=wait,
                    )
                if resp.content_length is not None and resp.content_length > self.max_bytes:
                    raise FeedError(
                        f"the feed is {resp.content_length} bytes, over the cap of "
                        f"{self.max_bytes}",
                        status=resp.status,
                    )
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise FeedError(
                            f"the feed is over the cap of {self.max_bytes} bytes",
                            status=resp.status,
                        )
                return resp.status, bytes(body), kept
        except aiohttp.TooManyRedirects as exc:
            raise FeedError(f"more than {MAX_REDIRECTS} redirects") from exc
        except TimeoutError as exc:
            raise FeedError("timed out") from exc
        except aiohttp.ClientError as exc:
            raise FeedError(f"{type(exc).__name__}: {exc}") from exc

    async def _succeeded(self, state: FeedState, status: int, headers: dict[str, str]) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        new = state.model_copy(
            update={
                "etag": lower.get("etag", state.etag),
                "last_modified": lower.get("last-modified", state.last_modified),
                "failures": 0,
                "next_poll_at": None,
                "paused_until": None,
                "last_polled_at": self.clock.now(),
                "last_status": status,
                "last_error": None,
            }
        )
        await self.store.read(self.state.put, new)

    async def _failed(self, state: FeedState, report: FeedReport, exc: FeedError) -> None:
        now = self.clock.now()
        failures = state.failures + 1
        backoff = min(self.interval * 2 ** (failures - 1), MAX_BACKOFF)
        wait = max(backoff, exc.retry_after or timedelta(0))
        paused_until = None
        report.outcome = "error"
        report.http_status = exc.status
        report.errors.append(str(exc))
        log.warning("feed %s failed (%d in a row): %s", state.feed_url, failures, exc)
        if failures >= self.max_failures:
            paused_until = now + max(self.pause, wait)
            report.outcome = "paused"
        new = state.model_copy(
            update={
                "failures": failures,
                "next_poll_at": now + wait,
                "paused_until": paused_until,
                "last_polled_at": now,
                "last_status": exc.status,
                "last_error": str(exc)[:500],
            }
        )
        await self.store.read(self.state.put, new)
        if paused_until is not None:
            try:
                await self.notifier.notify(
                    f"Feed {state.feed_url} paused until {paused_until:%Y-%m-%d %H:%M} UTC after "
                    f"{failures} failures in a row; last error: {exc}"
                )
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed notice must not stop polling
                log.exception("could not send the pause notice for %s", state.feed_url)

    async def _record_items(self, feed_url: str, items: list[FeedItem], report: FeedReport) -> None:
        all_keys = [k for item in items for k in item.keys(feed_url)]
        seen = await self.store.read(self.state.seen, all_keys)
        fresh: list[FeedItem] = []
        keys_now: set[str] = set()
        for item in items:
            keys = item.keys(feed_url)
            if seen.intersection(keys) or keys_now.intersection(keys):
                continue
            keys_now.update(keys)
            fresh.append(item)
        report.new_items = len(fresh)
        if not fresh:
            return
        deals = await self.store.read(Queries(self.store.store).counting)
        for item in fresh:
            try:
                events, found = await asyncio.to_thread(self._item_events, feed_url, item, deals)
                if events:
                    await self.store.append(events)
                report.candidates.extend(found)
            except (StoreError, ValidationError, ValueError) as exc:
                # A bad item is logged and skipped, never fatal; it is still marked seen so that
                # it is not retried forever.
                log.warning("feed %s: skipped item %s: %s", feed_url, item.url, exc)
                report.errors.append(f"item {item.url}: {exc}")
            await self.store.read(self.state.mark_seen, feed_url, item.keys(feed_url))
        if report.candidates:
            try:
                await self.notifier.propose(report.candidates)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - they are in the log: /review still lists them
                log.exception("could not put %d candidates up for review", len(report.candidates))

    def _item_events(
        self, feed_url: str, item: FeedItem, deals: list[Any]
    ) -> tuple[list[NewEvent], list[FoundCandidate]]:
        """The CandidateProposed events of one item (runs in a worker thread: CPU work)."""
        events: list[NewEvent] = []
        found: list[FoundCandidate] = []
        now = self.clock.now()
        occurred = now
        if item.published is not None:
            day = datetime(
                item.published.year, item.published.month, item.published.day, tzinfo=UTC
            )
            occurred = min(day, now) if day.year >= 1990 else now
        host = feed_host(feed_url)
        for index, candidate in enumerate(extract_candidates(item.text, published=item.published)):
            stream = candidate_stream(item.url, index)
            if self.store.store.stream_version(stream) > 0:
                continue  # recorded before (a restart between append and mark_seen)
            try:
                deal = CandidateDeal.model_validate(candidate.model_dump())
            except ValidationError as exc:
                log.info(
                    "feed %s: candidate %d of %s is not valid: %s",
                    feed_url,
                    index,
                    item.url,
                    exc.errors()[0].get("msg"),
                )
                continue
            match = match_candidate(deal, deals, published=item.published)
            payload = CandidateProposed(
                article_url=item.url[:2000],
                article_title=(item.title or None) and item.title[:500],  # type: ignore[index]
                feed_id=feed_url[:200],
                published=item.published,
                deal=deal,
                matched_deal=match.deal_id,
                action=match.action,
            )
            source = item.url if len(item.url) <= 2000 else None
            try:
                event = NewEvent(
                    stream_id=stream,
                    payload=payload,
                    occurred_at=occurred,
                    actor=f"feed:{host}",
                    source_url=source,
                    source_title=payload.article_title,
                    idempotency_key=stream,
                    expected_version=0,
                )
            except ValidationError:
                event = NewEvent(
                    stream_id=stream,
                    payload=payload,
                    occurred_at=occurred,
                    actor=f"feed:{host}",
                    idempotency_key=stream,
                    expected_version=0,
                )
            events.append(event)
            found.append(
                FoundCandidate(
                    stream_id=stream,
                    article_url=item.url,
                    lab=deal.lab,
                    kind=deal.kind,
                    action=match.action,
                    deal_id=match.deal_id,
                )
            )
        return events, found


# -- wiring ----------------------------------------------------------------------------------


def make_session(timeout_s: float = 30.0) -> aiohttp.ClientSession:
    """The one ClientSession of the feeds, with an explicit timeout on every request."""
    timeout = aiohttp.ClientTimeout(
        total=timeout_s, sock_connect=min(10.0, timeout_s), sock_read=timeout_s
    )
    return aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT})


def schedule_feeds(
    scheduler: AsyncIOScheduler,
    poller: FeedPoller,
    feed_urls: Sequence[str],
    *,
    interval: timedelta,
    first_run: datetime | None = None,
) -> list[str]:
    """Add one interval job per feed (UTC trigger, one run at a time); returns the job ids."""
    ids = []
    # APScheduler 3 adds a job paused when next_run_time=None, so pass it only when given.
    extra: dict[str, Any] = {} if first_run is None else {"next_run_time": first_run}
    for url in feed_urls:
        job = scheduler.add_job(
            poller.poll_feed,
            IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
            args=[url],
            id=f"feed:{url}",
            name=f"poll {url}",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            **extra,
        )
        ids.append(job.id)
    return ids


def configured_feeds(settings: Settings) -> list[str]:
    """The feed URLs of COMPUTEWATCH_FEEDS; UserInputError names the setting when one is bad."""
    try:
        return parse_feed_urls(settings.computewatch_feeds)
    except ValueError as exc:
        raise UserInputError(f"COMPUTEWATCH_FEEDS: {exc}") from None


class FeedService:
    """Feed polling beside a running bot: one interval job per feed on an AsyncIOScheduler (UTC
    triggers), the first poll at start; stop() shuts the scheduler down, ends the polls in flight
    and closes the session, before the writer that records their candidates stops."""

    def __init__(
        self,
        settings: Settings,
        store: AsyncEventStore,
        clock: Clock,
        notifier: Notifier,
        urls: Sequence[str],
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self.urls = list(urls)
        self.interval = timedelta(minutes=settings.computewatch_feed_interval_min)
        self.scheduler: AsyncIOScheduler | None = None
        self.session: aiohttp.ClientSession | None = None
        self.poller: FeedPoller | None = None

    async def start(self, *, first_run: datetime | None = None) -> None:
        self.session = make_session(self.settings.computewatch_feed_timeout_s)
        self.poller = FeedPoller(
            self.session,
            self.store,
            clock=self.clock,
            notifier=self.notifier,
            interval=self.interval,
            max_bytes=self.settings.computewatch_feed_max_bytes,
            max_failures=self.settings.computewatch_feed_max_failures,
        )
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        schedule_feeds(
            self.scheduler,
            self.poller,
            self.urls,
            interval=self.interval,
            # The scheduler runs on wall time; the first poll is due as soon as we start.
            first_run=first_run or datetime.now(UTC),
        )
        self.scheduler.start()
        log.warning(
            "polling %d feed(s) every %s", len(self.urls), _minutes(self.interval.total_seconds())
        )

    async def stop(self, grace_s: float = 5.0) -> None:
        if self.scheduler is not None:
            self.scheduler.pause()  # no new polls; those running may finish
        if self.poller is not None:
            await self.poller.drain(grace_s)
            self.poller = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self.session is not None:
            await self.session.close()
            self.session = None


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def party_names() -> dict[str, str]:
    """Display names of the registry's parties (for deal titles)."""
    return {p.slug: p.name for p in default_registry()}


class PrintNotifier:
    """A notifier for the command line: notices go to stderr (candidates are printed anyway)."""

    async def notify(self, text: str) -> None:
        print(f"notice: {text}", file=sys.stderr)

    async def propose(self, candidates: Sequence[FoundCandidate]) -> None:
        return None


async def run_poll_once(settings: Settings, db: Path, *, force: bool = False) -> int:
    """`computewatch feeds poll --once`: poll every configured feed once and print what it found."""
    from bot.services import open_services

    urls = parse_feed_urls(settings.computewatch_feeds)
    if not urls:
        print("no feeds configured: set COMPUTEWATCH_FEEDS to RSS/Atom URLs", file=sys.stderr)
        return 1
    services = open_services(db, seed=settings.computewatch_seed)
    status = 0
    try:
        async with (
            AsyncEventStore(services.store) as astore,
            make_session(settings.computewatch_feed_timeout_s) as session,
        ):
            poller = FeedPoller(
                session,
                astore,
                clock=services.store.clock,
                notifier=PrintNotifier(),
                interval=timedelta(minutes=settings.computewatch_feed_interval_min),
                max_bytes=settings.computewatch_feed_max_bytes,
                max_failures=settings.computewatch_feed_max_failures,
            )
            for report in await poller.poll_all(urls, force=force):
                print(report.line())
                for c in report.candidates:
                    target = f" -> {c.deal_id}" if c.deal_id else ""
                    print(
                        f"  {c.stream_id.removeprefix('candidate:')[:12]}  {c.action}{target}"
                        f"  {c.lab} {c.kind}  {c.article_url}"
                    )
                for error in report.errors:
                    print(f"  error: {error}")
                if report.outcome == "error":
                    status = 1
    finally:
        services.close()
    return status
