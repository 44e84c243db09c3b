"""Bad feed documents, generated: parse_items reads items or refuses the document with FeedError,
and the poller, fetching from a real aiohttp server on 127.0.0.1 (broken gzip, lying lengths,
entity declarations, error statuses), never raises and records nothing but candidates."""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from aiohttp import web
from hypothesis import event, given
from hypothesis import strategies as st

from bot.feeds import FeedError, FeedItem, FeedPoller, UnsafeFeedError, make_session, parse_items
from store.clock import ManualClock
from store.facade import AsyncEventStore
from store.log import EventStore
from tests.property.junk import (
    ANY_TEXT,
    JUNK_TEXT,
    NASTY_TEXT,
    LoopThread,
    ShortRepr,
    bad_input_settings,
)

NOW = datetime(2026, 8, 1, tzinfo=UTC)
FEED_URL = "https://feeds.example.com/rss"
DATES = st.sampled_from(
    [
        "Sat, 10 Jan 2026 09:00:00 +0000",
        "Mon, 30 Feb 2026 09:00:00 +0000",
        "Sun, 31 Dec 0000 00:00:00 +0000",
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "2026-13-45T99:99:99Z",
        "yesterday",
        "",
        "1e400",
    ]
)
LINKS = st.sampled_from(
    [
        "https://news.example.com/a",
        "http://news.example.com/b?utm_source=x#frag",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://",
        "http://[::1",
        "https://news.example.com/" + "a" * 3000,
        "",
        "//news.example.com/relative",
        "/relative",
    ]
)


def text_node(text: str) -> str:
    """Text as an XML producer might (mis)write it: escaped, or raw."""
    return escape(text)


@st.composite
def rss_documents(draw: st.DrawFn) -> bytes:
    """RSS and Atom documents that are shaped right but carry junk, some of it hostile."""
    items = []
    for _ in range(draw(st.integers(0, 4))):
        title = text_node(draw(JUNK_TEXT))
        link = text_node(draw(LINKS | JUNK_TEXT))
        body = draw(JUNK_TEXT | st.sampled_from(["<p>x</p><script>1</script>", "&lt;b&gt;"]))
        body = draw(st.sampled_from([text_node(body), f"<![CDATA[{body}]]>", body]))
        guid = text_node(draw(st.sampled_from(["g1", "", "https://news.example.com/g"]) | ANY_TEXT))
        date = draw(DATES)
        items.append(
            f"<item><title>{title}</title><link>{link}</link><guid>{guid}</guid>"
            f"<pubDate>{date}</pubDate><description>{body}</description></item>"
        )
    prolog = draw(
        st.sampled_from(
            [
                '<?xml version="1.0" encoding="utf-8"?>',
                '<?xml version="1.0" encoding="latin-1"?>',
                '<?xml version="1.0" encoding="no-such-codec"?>',
                "",
                '<!DOCTYPE rss [<!ENTITY x "xxxxxxxxxx">]>',
                '<!DOCTYPE rss SYSTEM "http://127.0.0.1:9/evil.dtd">',
                '<!DOCTYPE rss [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
                "<!doctype rss [ ]>",
            ]
        )
    )
    kind = draw(st.sampled_from(["rss", "atom", "rss-truncated", "nested"]))
    if kind == "atom":
        entries = "".join(
            f"<entry><title>{text_node(draw(JUNK_TEXT))}</title><id>{i}</id>"
            f'<link href="{text_node(draw(LINKS))}"/><updated>{draw(DATES)}</updated>'
            f'<content type="html">{text_node(draw(JUNK_TEXT))}</content></entry>'
            for i in range(draw(st.integers(0, 3)))
        )
        doc = f'{prolog}<feed xmlns="http://www.w3.org/2005/Atom">{entries}</feed>'
    else:
        doc = (
            f'{prolog}<rss version="2.0"><channel><title>t</title>{"".join(items)}</channel></rss>'
        )
        if kind == "rss-truncated":
            doc = doc[: draw(st.integers(0, len(doc)))]
        elif kind == "nested":
            depth = draw(st.sampled_from([100, 5000]))
            doc = doc.replace("<channel>", "<channel>" + "<x>" * depth + "</x>" * depth)
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1"]))
    return doc.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


DOCUMENTS = st.one_of(
    rss_documents(),
    st.binary(max_size=500),
    NASTY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"",
            b"<rss/>",
            b"<?xml version='1.0'?>",
            b"\x00" * 100,
            b"\xef\xbb\xbf<rss><channel><item><link>https://x.example.com/</link></item></channel>",
            gzip.compress(b"<rss/>"),
            b"<html><body>Not a feed</body></html>",
            b'<!DOCTYPE l [<!ENTITY l "l"><!ENTITY l2 "&l;&l;&l;">]><rss>&l2;</rss>',
        ]
    ),
)


@dataclass
class Document(ShortRepr):
    """A generated document, shown cut short in Hypothesis' reports."""

    body: bytes

    def __repr__(self) -> str:
        return f"Document({self.body[:120]!r}{'...' if len(self.body) > 120 else ''})"


@bad_input_settings(max_examples=300)
@given(document=DOCUMENTS.map(Document))
def test_a_bad_feed_document_gives_items_or_a_feed_error(document: Document) -> None:
    body = document.body
    try:
        items = parse_items(body, FEED_URL)
    except UnsafeFeedError:
        event("unsafe")
        return
    except FeedError as exc:
        event("not a feed")
        assert str(exc)
        return

    event(f"{min(len(items), 2)}+ items")
    assert b"<!ENTITY" not in body.upper().replace(b"\x00", b"")
    for item in items:
        assert isinstance(item, FeedItem)
        assert item.url.startswith(("http://", "https://"))


def test_entity_declarations_are_refused_in_every_encoding() -> None:
    doc = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><rss>&a;</rss>'
    for encoding in ("utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        with pytest.raises(UnsafeFeedError):
            parse_items(doc.encode(encoding), FEED_URL)


# -- the poller, over HTTP ----------------------------------------------------------------------
@dataclass
class Served:
    """What the feed server answers for one path."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FeedSite(ShortRepr):
    loop: LoopThread
    base: str
    store: EventStore
    poller: FeedPoller
    routes: dict[str, Served] = field(default_factory=dict)

    def __repr__(self) -> str:
        return "<feed site>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedSite]:
    db = tmp_path_factory.mktemp("feeds") / "feeds.duckdb"
    store = EventStore(db, clock=ManualClock(NOW))
    loop = LoopThread()
    routes: dict[str, Served] = {}
    parts: dict[str, Any] = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        served = routes.get(request.path)
        if served is None:
            return web.Response(status=404)
        response = web.StreamResponse(status=served.status, headers=served.headers)
        response.content_length = None
        await response.prepare(request)
        try:
            await response.write(served.body)
            await response.write_eof()
        except ConnectionError:
            pass  # the poller hung up (over its size cap): that is its right
        return response

    async def start() -> tuple[str, FeedPoller]:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", serve)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        writer = AsyncEventStore(store)
        writer.start()
        session = make_session(timeout_s=5)
        parts.update(runner=runner, writer=writer, session=session)
        poller = FeedPoller(
            session, writer, clock=store.clock, max_bytes=64 * 1024, max_failures=10_000
        )
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}", poller

    async def stop() -> None:
        await parts["session"].close()
        await parts["writer"].aclose()
        await parts["runner"].cleanup()

    try:
        base, poller = loop.run(start())
        yield FeedSite(loop, base, store, poller, routes)
    finally:
        loop.run(stop())
        loop.close()
        store.close()


def gzip_variants(body: bytes) -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    packed = gzip.compress(body)
    return st.sampled_from(
        [
            (body, {}),
            (packed, {"Content-Encoding": "gzip"}),
            (packed[: max(1, len(packed) // 2)], {"Content-Encoding": "gzip"}),  # truncated
            (packed[:10], {"Content-Encoding": "gzip"}),  # the header only
            (body, {"Content-Encoding": "gzip"}),  # says gzip, is not
            (zlib.compress(body), {"Content-Encoding": "deflate"}),
            (body, {"Content-Encoding": "br"}),
            (body, {"Content-Encoding": "x-junk"}),
            (body, {"Content-Length": str(len(body) + 100)}),  # promises more than it sends
            (body, {"Content-Length": "-1"}),
            (body, {"Content-Type": "text/html; charset=no-such-codec"}),
        ]
    )


_paths = itertools.count(1)


@bad_input_settings(max_examples=150)
@given(data=st.data(), document=DOCUMENTS.map(Document))
def test_the_poller_survives_any_served_document_and_records_only_candidates(
    site: FeedSite, caplog: pytest.LogCaptureFixture, data: st.DataObject, document: Document
) -> None:
    status = data.draw(st.sampled_from([200, 200, 200, 200, 203, 404, 429, 500, 503]))
    body, headers = data.draw(gzip_variants(document.body))
    if status in (429, 503):
        headers["Retry-After"] = data.draw(
            st.sampled_from(["120", "-5", "99999999999999", "soon", "Wed, 21 Oct 2015 07:28:00"])
        )
    path = f"/feed-{next(_paths)}"
    site.routes[path] = Served(status, body, headers)
    before = site.store.head
    caplog.clear()

    report = site.loop.run(site.poller.poll_feed(site.base + path, force=True))

    event(f"outcome {report.outcome}")
    assert report.outcome in ("ok", "error", "paused", "not_modified"), report
    if report.outcome != "ok":
        assert report.errors and all(isinstance(e, str) and e for e in report.errors)
    new = list(site.store.read_all(after=before))
    assert all(e.type == "CandidateProposed" for e in new), [e.type for e in new]
    assert len(new) == len(report.candidates)
    # Handled as a failure of the feed, not caught as a crash at the job's boundary.
    crashes = [r for r in caplog.records if r.getMessage().startswith("feed job failed")]
    assert not crashes, crashes[0].exc_info


def test_the_poller_still_records_a_good_feed_afterwards(site: FeedSite, tmp_path: Path) -> None:
    article = "OpenAI signed a $10 billion cloud contract with Oracle for 1 GW of capacity."
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>OpenAI rents from Oracle</title><link>https://news.example.com/fuzz-after</link>"
        f"<description>{article}</description></item></channel></rss>"
    )
    site.routes["/good"] = Served(200, rss.encode(), {"Content-Type": "application/rss+xml"})

    report = site.loop.run(site.poller.poll_feed(site.base + "/good", force=True))

    assert report.outcome == "ok" and len(report.candidates) == 1
