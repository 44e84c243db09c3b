"""Feed polling against a real aiohttp feed server on 127.0.0.1: safe, polite and idempotent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.feeds import FeedPoller, FoundCandidate, make_session, normalise_url, schedule_feeds
from store.clock import ManualClock
from store.facade import AsyncEventStore
from store.feeds_state import FeedStateStore
from store.log import EventStore

ARTICLE = "OpenAI signed a $10 billion cloud contract with Oracle for 1 GW of capacity."
RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Example compute news</title>
<link>https://news.example.com/</link><description>d</description>
<item><title>OpenAI rents from Oracle</title>
<link>https://news.example.com/openai-oracle/?utm_source=rss#top</link>
<guid>https://news.example.com/openai-oracle</guid>
<pubDate>Sat, 10 Jan 2026 09:00:00 +0000</pubDate>
<description>&lt;p&gt;{ARTICLE}&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;</description></item>
<item><title>Weather</title><link>https://news.example.com/weather</link>
<guid>w1</guid><description>Sunny.</description></item>
</channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom news</title><id>urn:x</id>
<updated>2026-01-12T00:00:00Z</updated>
<entry><title>Anthropic and Google</title><id>urn:a1</id>
<link href="https://atom.example.com/anthropic-google"/>
<updated>2026-01-12T00:00:00Z</updated>
<content type="html">Anthropic signed a $30 billion cloud contract with Google for 1 GW.</content>
</entry></feed>"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rss version="2.0"><channel><title>&lol3;</title><item><title>&lol3;</title>
<link>https://evil.example.com/1</link><description>{ARTICLE}</description></item>
</channel></rss>""".replace("{ARTICLE}", ARTICLE)
MALFORMED = b"<<<this is </not> xml &&& at all"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ETAG = '"v1"'
LAST_MODIFIED = "Sat, 10 Jan 2026 10:00:00 GMT"


@dataclass
class FeedServer:
    url: str = ""
    requests: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    flaky_calls: int = 0

    def route(self, name: str) -> str:
        return f"{self.url}/{name}"


def build_app(server: FeedServer) -> web.Application:
    def seen(request: web.Request) -> None:
        server.requests.setdefault(request.path, []).append(dict(request.headers))

    async def rss(request: web.Request) -> web.StreamResponse:
        seen(request)
        if request.headers.get("If-None-Match") == ETAG:
            return web.Response(status=304)
        return web.Response(
            body=RSS.encode(),
            content_type="application/rss+xml",
            headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED},
        )

    async def rss_plain(request: web.Request) -> web.StreamResponse:
        seen(request)  # no validators: the poller must dedup items on its own
        return web.Response(body=RSS.encode(), content_type="application/rss+xml")

    async def atom(request: web.Request) -> web.StreamResponse:
        seen(request)
        return web.Response(body=ATOM.encode(), content_type="application/atom+xml")

    def fixed(body: bytes) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            seen(request)
            return web.Response(body=body, content_type="application/xml")

        return handler

    async def big(request: web.Request) -> web.StreamResponse:
        seen(request)
        resp = web.StreamResponse(headers={"Content-Type": "application/xml"})
        resp.enable_chunked_encoding()  # no Content-Length: the cap must hold while reading
        await resp.prepare(request)
        for _ in range(64):
            await resp.write(b"<!-- padding -->" * 1024)
        await resp.write_eof()
        return resp

    async def slow(request: web.Request) -> web.StreamResponse:
        seen(request)
        await asyncio.sleep(1.5)
        return web.Response(body=RSS.encode())

    async def loop(request: web.Request) -> web.StreamResponse:
        seen(request)
        raise web.HTTPFound(location="/loop")

    async def flaky(request: web.Request) -> web.StreamResponse:
        seen(request)
        server.flaky_calls += 1
        if server.flaky_calls == 1:
            return web.Response(status=500, text="boom")
        return web.Response(body=ATOM.encode(), content_type="application/atom+xml")

    async def busy(request: web.Request) -> web.StreamResponse:
        seen(request)
        return web.Response(status=429, headers={"Retry-After": "7200"})

    async def down(request: web.Request) -> web.StreamResponse:
        seen(request)
        return web.Response(status=503, headers={"Retry-After": "Sun, 01 Mar 2026 05:00:00 GMT"})

    async def broken(request: web.Request) -> web.StreamResponse:
        seen(request)
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/rss", rss)
    app.router.add_get("/rss-plain", rss_plain)
    app.router.add_get("/atom", atom)
    app.router.add_get("/malformed", fixed(MALFORMED))
    app.router.add_get("/laughs", fixed(LAUGHS.encode()))
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/loop", loop)
    app.router.add_get("/flaky", flaky)
    app.router.add_get("/busy", busy)
    app.router.add_get("/down", down)
    app.router.add_get("/broken", broken)
    return app


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    runner = web.AppRunner(build_app(server))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


@dataclass
class Notices:
    texts: list[str] = field(default_factory=list)
    proposed: list[list[str]] = field(default_factory=list)

    async def notify(self, text: str) -> None:
        self.texts.append(text)

    async def propose(self, candidates: Sequence[FoundCandidate]) -> None:
        self.proposed.append([c.stream_id for c in candidates])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session(timeout_s=0.5) as opened:
        yield opened


@pytest.fixture
async def astore(store: EventStore) -> AsyncIterator[AsyncEventStore]:
    async with AsyncEventStore(store) as opened:
        yield opened


@pytest.fixture
def notices() -> Notices:
    return Notices()


@pytest.fixture
def poller(
    session: aiohttp.ClientSession, astore: AsyncEventStore, clock: ManualClock, notices: Notices
) -> FeedPoller:
    return FeedPoller(
        session,
        astore,
        clock=clock,
        notifier=notices,
        interval=timedelta(minutes=15),
        max_bytes=64 * 1024,
        max_failures=5,
    )


def candidate_events(store: EventStore) -> list[str]:
    return [e.stream_id for e in store.read_all() if e.type == "CandidateProposed"]


async def test_new_rss_items_become_candidates(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    report = await poller.poll_feed(feed_server.route("rss"))

    assert (report.outcome, report.new_items) == ("ok", 2)
    events = [e for e in store.read_all() if e.type == "CandidateProposed"]
    assert len(events) == 1
    proposed = events[0]
    assert proposed.actor == "feed:127.0.0.1:" + feed_server.url.rsplit(":", 1)[1]
    assert proposed.payload.deal.lab == "openai"  # type: ignore[attr-defined]
    assert proposed.payload.action == "new_deal"  # type: ignore[attr-defined]
    assert proposed.payload.article_url.startswith("https://news.example.com/openai-oracle")  # type: ignore[attr-defined]


async def test_new_candidates_are_put_up_for_review_once(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore, notices: Notices
) -> None:
    await poller.poll_feed(feed_server.route("rss-plain"))

    await poller.poll_feed(feed_server.route("rss-plain"))

    assert notices.proposed == [candidate_events(store)]


async def test_atom_items_become_candidates(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    report = await poller.poll_feed(feed_server.route("atom"))

    assert report.outcome == "ok"
    assert [c.lab for c in report.candidates] == ["anthropic"]
    assert len(candidate_events(store)) == 1


async def test_second_poll_sends_conditional_headers_and_adds_nothing(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    await poller.poll_feed(feed_server.route("rss"))
    before = store.head

    report = await poller.poll_feed(feed_server.route("rss"))

    assert report.outcome == "not_modified"
    sent = feed_server.requests["/rss"][-1]
    assert sent["If-None-Match"] == ETAG
    assert sent["If-Modified-Since"] == LAST_MODIFIED
    assert store.head == before


async def test_items_already_seen_are_not_recorded_again_without_validators(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    await poller.poll_feed(feed_server.route("rss-plain"))
    before = store.head

    report = await poller.poll_feed(feed_server.route("rss-plain"))

    assert (report.outcome, report.new_items) == ("ok", 0)
    assert store.head == before


async def test_a_restarted_poller_on_the_same_database_adds_nothing(
    feed_server: FeedServer, db_path: Path, clock: ManualClock
) -> None:
    for _ in range(2):
        with EventStore(db_path, clock=clock) as store:
            async with AsyncEventStore(store) as astore, make_session(2.0) as session:
                poller = FeedPoller(session, astore, clock=clock)
                await poller.poll_feed(feed_server.route("rss-plain"))
                await poller.poll_feed(feed_server.route("atom"))
                count = len(candidate_events(store))

    assert count == 2
    assert len(feed_server.requests["/rss-plain"]) == 2


async def test_malformed_xml_is_a_failure_and_records_nothing(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    report = await poller.poll_feed(feed_server.route("malformed"))

    assert report.outcome == "error"
    assert store.head == 0
    assert FeedStateStore(store).get(feed_server.route("malformed")).failures == 1


async def test_entity_expansion_is_refused_before_parsing(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    report = await poller.poll_feed(feed_server.route("laughs"))

    assert report.outcome == "error"
    assert "entities" in report.errors[0]
    assert store.head == 0


async def test_a_body_over_the_cap_is_refused(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    report = await poller.poll_feed(feed_server.route("big"))

    assert report.outcome == "error"
    assert "cap" in report.errors[0]


async def test_a_slow_server_times_out(feed_server: FeedServer, poller: FeedPoller) -> None:
    report = await poller.poll_feed(feed_server.route("slow"))

    assert (report.outcome, report.errors) == ("error", ["timed out"])


async def test_a_redirect_loop_is_bounded(feed_server: FeedServer, poller: FeedPoller) -> None:
    report = await poller.poll_feed(feed_server.route("loop"))

    assert report.outcome == "error"
    assert "redirects" in report.errors[0]
    assert len(feed_server.requests["/loop"]) <= 1 + 3  # the request and at most 3 redirects


async def test_a_server_error_backs_off_then_recovers(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore, clock: ManualClock
) -> None:
    url = feed_server.route("flaky")
    first = await poller.poll_feed(url)
    during_backoff = await poller.poll_feed(url)
    clock.advance(timedelta(minutes=16))

    recovered = await poller.poll_feed(url)

    assert (first.outcome, first.http_status) == ("error", 500)
    assert during_backoff.outcome == "skipped"
    assert recovered.outcome == "ok"
    assert FeedStateStore(store).get(url).failures == 0
    assert len(candidate_events(store)) == 1


async def test_retry_after_seconds_on_429_is_honoured(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore, clock: ManualClock
) -> None:
    url = feed_server.route("busy")
    await poller.poll_feed(url)
    clock.advance(timedelta(minutes=90))  # past the backoff, not past Retry-After (2 h)

    again = await poller.poll_feed(url)

    assert again.outcome == "skipped"
    assert len(feed_server.requests["/busy"]) == 1
    state = FeedStateStore(store).get(url)
    assert state.next_poll_at is not None
    assert state.next_poll_at - clock.now() == timedelta(minutes=30)


async def test_retry_after_date_on_503_is_honoured(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore, clock: ManualClock
) -> None:
    url = feed_server.route("down")

    await poller.poll_feed(url)

    state = FeedStateStore(store).get(url)
    assert state.next_poll_at == clock.now() + timedelta(hours=5)


async def test_a_feed_that_keeps_failing_is_paused_with_a_notice(
    feed_server: FeedServer,
    poller: FeedPoller,
    store: EventStore,
    clock: ManualClock,
    notices: Notices,
) -> None:
    url = feed_server.route("broken")
    outcomes = []
    for _ in range(5):
        outcomes.append((await poller.poll_feed(url)).outcome)
        clock.advance(timedelta(hours=7))

    later = await poller.poll_feed(url)

    assert outcomes == ["error"] * 4 + ["paused"]
    assert later.outcome == "paused"
    assert len(notices.texts) == 1 and url in notices.texts[0]
    assert len(feed_server.requests["/broken"]) == 5


async def test_the_poller_survives_every_failure_in_one_poll(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    names = ["rss", "atom", "malformed", "laughs", "big", "slow", "loop", "busy", "down"]

    reports = await poller.poll_all([feed_server.route(n) for n in names])
    again = await poller.poll_all([feed_server.route(n) for n in names], force=True)

    assert [r.outcome for r in reports][:2] == ["ok", "ok"]
    assert len(candidate_events(store)) == 2
    assert sum(len(r.candidates) for r in again) == 0


async def test_scheduler_runs_one_interval_job_per_feed(
    feed_server: FeedServer, poller: FeedPoller, store: EventStore
) -> None:
    scheduler = AsyncIOScheduler()
    urls = [feed_server.route("rss"), feed_server.route("atom")]

    ids = schedule_feeds(scheduler, poller, urls, interval=timedelta(minutes=15))
    job = scheduler.get_job(ids[0])
    report = await job.func(*job.args)

    assert len(scheduler.get_jobs()) == 2
    assert job.trigger.interval == timedelta(minutes=15)
    assert report.outcome == "ok"
    assert len(candidate_events(store)) == 1


def test_urls_are_normalised_for_dedup() -> None:
    assert normalise_url("HTTPS://News.Example.com:443/a/b/?utm_source=x&id=3#frag") == (
        "https://news.example.com/a/b?id=3"
    )
