"""Bad HTTP input, generated, against the real API (aiohttp on 127.0.0.1 over a seeded DuckDB file):
every body, path and query string gets a JSON answer below 500, a refusal writes nothing, and
the server keeps answering."""

from __future__ import annotations

import codecs
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import event, given
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.api import ApiDeps, serve_api
from bot.services import open_services
from store.clock import ManualClock
from store.facade import AsyncEventStore
from tests.property.junk import (
    ANY_TEXT,
    JSON_VALUES,
    JUNK_TEXT,
    NASTY_TEXT,
    LoopThread,
    ShortRepr,
    bad_input_settings,
    broken_events,
    dumps,
    valid_event_dict,
)

TOKEN = "fuzz-token-4b1d"
NOW = datetime(2026, 8, 1, tzinfo=UTC)
MAX_BODY = 64 * 1024
AIOHTTP_MAX_LINE = 8190 - len("GET  HTTP/1.1")


@dataclass
class Answer:
    status: int
    body: Any


@dataclass
class RunningApi(ShortRepr):
    port: int

    def __repr__(self) -> str:
        return f"<API on 127.0.0.1:{self.port}>"

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request on a fresh connection; the answer must be JSON in strict UTF-8."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
            content_type = response.getheader("Content-Type", "")
        finally:
            connection.close()
        assert response.status < 500, (response.status, raw[:500])
        assert content_type.startswith("application/json"), (response.status, content_type, raw)
        return Answer(response.status, json.loads(raw.decode("utf-8")))

    def events(self) -> int:
        answer = self.request("GET", "/health")
        assert answer.status == 200, answer
        return int(answer.body["events"])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    db = tmp_path_factory.mktemp("http") / "api.duckdb"
    services = open_services(db, clock=ManualClock(NOW))
    loop = LoopThread()
    writer = AsyncEventStore(services.store)
    runners: list[web.AppRunner] = []

    async def start() -> int:
        writer.start()
        deps = ApiDeps(
            events=writer,
            context=services.context,
            commands=services.commands,
            token=SecretStr(TOKEN),
            max_body=MAX_BODY,
            sql_timeout_s=2.0,
        )
        runner = await serve_api(deps, "127.0.0.1", 0)
        runners.append(runner)
        return int(runner.addresses[0][1])

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()
        await writer.aclose()

    try:
        yield RunningApi(loop.run(start()))
    finally:
        loop.run(stop())
        loop.close()
        services.close()


def assert_error_body(answer: Answer) -> None:
    """{"error": code, "detail": text}: what every refusal of the API looks like."""
    assert isinstance(answer.body, dict), answer
    assert isinstance(answer.body.get("error"), str) and answer.body["error"], answer
    assert isinstance(answer.body.get("detail"), str) and answer.body["detail"].strip(), answer
    assert "Traceback" not in answer.body["detail"]


# -- bodies -----------------------------------------------------------------------------------
def encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


RAW_BODIES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"",
            b" ",
            b"null",
            b"[]",
            b"{}",
            b'{"events": []}',
            b'{"events": {}}',
            b"[NaN]",
            b"[Infinity, -Infinity]",
            b'{"query": NaN}',
            b"[1e999]",
            b"[" + b"1" * 5000 + b"]",
            b'["\\ud800"]',
            b'{"events": [{"stream_id": "deal:x\\udc00"}]}',
            b"\xef\xbb\xbf[]",
            codecs.BOM_UTF16_LE + "[]".encode("utf-16-le"),
            b"\xff\xfe\x00\x00",
            b'{"a": 1, "a": 2}',
            b"[" * 100_000,
            b"[" * 50_000 + b"]" * 50_000,
            b'{"events": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
            b"x" * (MAX_BODY + 1),
            b'{"query": "' + b"a" * (MAX_BODY + 10) + b'"}',
        ]
    ),
)
EVENT_BODIES = st.one_of(
    st.lists(broken_events(), min_size=1, max_size=4),
    st.lists(broken_events(), min_size=1, max_size=4).map(lambda e: {"events": e}),
    st.tuples(st.lists(broken_events(), min_size=1, max_size=3), st.integers(1, 9)).map(
        # one broken event among valid ones: all or nothing
        lambda t: [valid_event_dict(1000 + t[1]), *t[0]]
    ),
    JSON_VALUES,
).map(lambda value: encoded(dumps(value)))


@bad_input_settings(max_examples=250)
@given(
    body=EVENT_BODIES | RAW_BODIES,
    auth=st.sampled_from(["good", "good", "good", "none", "wrong", "junk"]),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/x-www-form"]),
)
def test_a_bad_body_posted_to_events_is_refused_in_json_and_writes_nothing(
    api: RunningApi, body: bytes, auth: str, content_type: str
) -> None:
    headers = {
        "good": {"Authorization": f"Bearer {TOKEN}"},
        "none": {},
        "wrong": {"Authorization": "Bearer nope"},
        "junk": {"Authorization": "Basic " + TOKEN + " Bearer" + " x" * 2000},
    }[auth]
    if content_type:
        headers["Content-Type"] = content_type
    before = api.events()

    answer = api.request("POST", "/events", body, headers)

    event(f"HTTP {answer.status}")
    if answer.status >= 400:
        assert_error_body(answer)
        assert api.events() == before
    else:
        assert answer.status in (200, 201)
        assert api.events() == before + answer.body["new"]


SQL_TEXT = st.one_of(
    JUNK_TEXT,
    st.lists(
        st.sampled_from(
            [
                "SELECT",
                "*",
                "FROM",
                "events",
                "deals",
                "lab_positions()",
                "read_csv('/etc/passwd')",
                "COPY",
                "ATTACH",
                "';",
                "--",
                "/*",
                "(",
                ")",
                "1e999",
                "INSTALL httpfs",
                "DELETE FROM events",
                ";",
            ]
        ),
        min_size=1,
        max_size=8,
    ).map(" ".join),
)


@bad_input_settings(max_examples=150)
@given(
    body=SQL_TEXT.map(lambda q: encoded(dumps({"query": q})))
    | JSON_VALUES.map(lambda v: encoded(dumps({"query": v})))
    | RAW_BODIES
)
def test_bad_sql_or_a_bad_body_posted_to_sql_is_answered_in_json_and_writes_nothing(
    api: RunningApi, body: bytes
) -> None:
    before = api.events()

    answer = api.request("POST", "/sql", body, {"Content-Type": "application/json"})

    event(f"HTTP {answer.status}")
    if answer.status >= 400:
        assert_error_body(answer)
    else:
        assert set(answer.body) >= {"columns", "rows", "truncated"}
    assert api.events() == before


# -- paths and query strings --------------------------------------------------------------------
ROUTES = ["/health", "/positions/{}", "/compare", "/deals", "/deals/{}", "/openapi.json", "/{}"]
PARAMS = st.sampled_from(
    ["as_of", "known_at", "labs", "lab", "status", "kind", "since", "page", "x", "", "as_of[]"]
)
RAW_ESCAPES = st.sampled_from(["%", "%zz", "%ff", "%ed%a0%80", "%00", "%c0%af", "%2e%2e/", "+"])


def quoted(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


PATH_TEXT = JUNK_TEXT.map(quoted) | RAW_ESCAPES
QUERY_VALUE = (
    JUNK_TEXT.map(quoted)
    | RAW_ESCAPES
    | st.sampled_from(["2025-12-31", "anthropic,openai", "anthropic", "signed", "2", ""])
)


@bad_input_settings(max_examples=250)
@given(
    route=st.sampled_from(ROUTES),
    segment=PATH_TEXT | st.sampled_from(["anthropic", "openai", "anthropic-google"]),
    query=st.lists(st.tuples(PARAMS, QUERY_VALUE), max_size=4),
    method=st.sampled_from(["GET", "GET", "GET", "HEAD", "DELETE", "PUT", "OPTIONS"]),
)
def test_a_bad_path_or_query_string_is_answered_in_json_below_500(
    api: RunningApi, route: str, segment: str, query: list[tuple[str, str]], method: str
) -> None:
    target = route.replace("{}", segment)
    if query:
        target += "?" + "&".join(f"{k}={v}" for k, v in query)
    before = api.events()

    if len(target) > AIOHTTP_MAX_LINE or method == "HEAD":
        # aiohttp's own parser refuses a request line past 8190 bytes (400, text/plain) before
        # any handler or middleware runs; a HEAD answer has no body. Only the status matters.
        connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
        try:
            connection.request("HEAD", target)
            status = connection.getresponse().status
        finally:
            connection.close()
        assert status < 500 if method == "HEAD" else status == 400, target
    else:
        answer = api.request(method, target)
        event(f"HTTP {answer.status}")
        if answer.status >= 400:
            assert_error_body(answer)
    assert api.events() == before


@bad_input_settings(max_examples=60)
@given(name=ANY_TEXT | NASTY_TEXT, value=ANY_TEXT | NASTY_TEXT)
def test_junk_headers_do_not_break_a_request(api: RunningApi, name: str, value: str) -> None:
    safe_name = "X-" + "".join(c for c in name if c.isascii() and c.isalnum())[:40]
    safe_value = "".join(c for c in value if " " <= c <= "~")[:2000]
    before = api.events()

    answer = api.request(
        "POST",
        "/events",
        json.dumps([valid_event_dict(5000)]).encode(),
        {safe_name: safe_value, "Authorization": safe_value},
    )

    assert answer.status in (400, 401)
    assert_error_body(answer)
    assert api.events() == before


def test_the_server_still_answers_after_the_bad_input(api: RunningApi, tmp_path: Path) -> None:
    answer = api.request("GET", "/positions/anthropic")

    assert answer.status == 200
    assert answer.body["lab"] == "anthropic"
