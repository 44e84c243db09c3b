"""The HTTP API on a real aiohttp server on 127.0.0.1, over a seeded DuckDB file in tmp_path."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import duckdb
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.answer_cache import AnswerCache
from bot.api import ANSWERS, ApiDeps, make_api, openapi_document, serve_api
from bot.commands.registry import run_command_line
from bot.errors import UserInputError
from bot.render import render_json
from bot.services import Services, open_services
from store.clock import ManualClock
from store.facade import AsyncEventStore
from store.snapshot import snapshot_path_for
from tests.factories import make_deal_reported, make_terms_revision

TOKEN = "test-token-7f3a9c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# After the last event of the bundled ledger, so that the seeded answers do not move.
NOW = datetime(2026, 8, 1, tzinfo=UTC)
LEDGER_DEAL = "deal:anthropic-google-cloud-2023"


@dataclass
class Api:
    """A started API: its HTTP session (base URL set), the services and the writer behind it."""

    http: aiohttp.ClientSession
    services: Services
    writer: AsyncEventStore
    db: Path
    answers: AnswerCache  # the API's kept answers

    def cli_json(self, line: str) -> Any:
        """What `computewatch ask LINE --json` prints, parsed."""
        return json.loads(
            render_json(run_command_line(self.services.context, self.services.commands, line))
        )

    def count(self) -> int:
        return self.services.store.count()


@asynccontextmanager
async def running_api(
    directory: Path, *, extra_routes: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[Api]:
    """Seed a database, start its writer and the API on a free port; stop all afterwards."""
    db = directory / "api.duckdb"
    services = open_services(db, clock=ManualClock(NOW))
    writer = AsyncEventStore(services.store)
    writer.start()
    deps = ApiDeps(events=writer, context=services.context, commands=services.commands, **options)
    if extra_routes:
        app = make_api(deps)
        for path, handler in extra_routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    else:
        runner = await serve_api(deps, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession(f"http://{host}:{port}") as session:
            yield Api(session, services, writer, db, runner.app[ANSWERS])
    finally:
        await runner.cleanup()
        await writer.aclose()
        services.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path, token=SecretStr(TOKEN)) as started:
        yield started


def new_deal_events(deal: str = "acme-api-1") -> list[dict[str, Any]]:
    """A new deal and a revision of it, in the project's event JSON."""
    return [
        make_deal_reported(deal, idempotency_key=f"test:{deal}:reported").to_json_dict(),
        make_terms_revision(
            deal, capacity_mw=1_500, idempotency_key=f"test:{deal}:revised"
        ).to_json_dict(),
    ]


async def call(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with api.http.request(method, path, **kwargs) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


# -- reads ------------------------------------------------------------------------------------
async def test_health_reports_the_number_of_events_and_the_head(api: Api) -> None:
    status, body = await call(api, "GET", "/health")

    assert status == 200
    assert body["status"] == "ok"
    assert body["events"] == api.count() > 0
    assert body["head"] == api.services.store.head


async def test_position_is_the_same_json_as_the_cli(api: Api) -> None:
    expected = api.cli_json("/position anthropic as_of:2026-01-01 known_at:2026-08-01")

    status, body = await call(
        api, "GET", "/positions/anthropic", params={"as_of": "2026-01-01", "known_at": "2026-08-01"}
    )

    assert status == 200
    assert body == expected
    assert body["lab"] == "anthropic" and body["capacity_mw"]["contracted"] > 0


async def test_a_repeated_question_is_answered_without_reading_until_the_log_moves(
    api: Api,
) -> None:
    first = await (await api.http.get("/positions/openai")).json()
    again = await (await api.http.get("/positions/OpenAI")).json()  # the same question
    reads = api.answers.stats.reads

    written = await api.http.post("/events", json=new_deal_events(), headers=AUTH)  # OpenAI's
    after = await (await api.http.get("/positions/openai")).json()

    assert again == first
    assert (reads, api.answers.stats.hits) == (1, 1)
    assert written.status == 201
    assert api.answers.stats.reads == 2  # the log moved: read anew
    assert after["deals"] == first["deals"] + 1  # and the new deal is in it
    assert after == api.cli_json("/position openai")


async def test_identical_requests_at_once_share_one_read(api: Api) -> None:
    answers = await asyncio.gather(
        *(api.http.get("/compare", params={"labs": "openai,anthropic"}) for _ in range(20))
    )

    bodies = [await a.json() for a in answers]
    assert all(a.status == 200 for a in answers)
    assert all(b == bodies[0] for b in bodies)
    assert api.answers.stats.reads == 1


async def test_position_accepts_a_lab_alias_in_the_path(api: Api) -> None:
    expected = api.cli_json("/position anthropic")

    status, body = await call(api, "GET", "/positions/" + quote("Anthropic"))

    assert status == 200
    assert body == expected


async def test_position_of_an_unknown_lab_is_404_with_a_suggestion(api: Api) -> None:
    status, body = await call(api, "GET", "/positions/anthropik")

    assert status == 404
    assert body["error"] == "not_found"
    assert "Did you mean anthropic?" in body["detail"]


async def test_bad_date_is_400_with_the_same_message_as_the_cli(api: Api) -> None:
    with pytest.raises(UserInputError) as cli_error:
        api.cli_json("/position anthropic as_of:2026-13-45")

    status, body = await call(api, "GET", "/positions/anthropic", params={"as_of": "2026-13-45"})

    assert status == 400
    assert body == {"error": "bad_request", "detail": str(cli_error.value)}


async def test_unknown_query_parameter_is_400(api: Api) -> None:
    status, body = await call(api, "GET", "/positions/anthropic", params={"asof": "2026-01-01"})

    assert status == 400
    assert "asof" in body["detail"] and "as_of" in body["detail"]


async def test_compare_is_the_same_json_as_the_cli(api: Api) -> None:
    expected = api.cli_json("/compare anthropic openai as_of:2026-06-30")

    status, body = await call(
        api, "GET", "/compare", params={"labs": "anthropic,openai", "as_of": "2026-06-30"}
    )

    assert status == 200
    assert body == expected


async def test_compare_of_one_lab_is_400(api: Api) -> None:
    status, body = await call(api, "GET", "/compare", params={"labs": "anthropic"})

    assert status == 400
    assert "at least two labs" in body["detail"]


async def test_deals_are_filtered_and_paged_like_the_cli(api: Api) -> None:
    expected = api.cli_json("/deals openai status:signed page:1")

    status, body = await call(
        api, "GET", "/deals", params={"lab": "openai", "status": "signed", "page": "1"}
    )

    assert status == 200
    assert body == expected
    assert body["deals"] and all(d["lab"] == "openai" for d in body["deals"])


async def test_a_deal_is_the_same_json_as_the_cli(api: Api) -> None:
    expected = api.cli_json("/deal anthropic-google-cloud-2023")

    status, body = await call(api, "GET", "/deals/anthropic-google-cloud-2023")

    assert status == 200
    assert body == expected


async def test_unknown_deal_is_404(api: Api) -> None:
    status, body = await call(api, "GET", "/deals/no-such-deal-anywhere")

    assert status == 404
    assert body["error"] == "not_found"


async def test_unknown_route_is_404_json(api: Api) -> None:
    status, body = await call(api, "GET", "/nowhere")

    assert status == 404
    assert body["error"] == "not_found"


# -- writes: authentication -------------------------------------------------------------------
async def test_posting_events_without_a_token_is_401(api: Api) -> None:
    before = api.count()

    status, body = await call(api, "POST", "/events", json=new_deal_events())

    assert status == 401
    assert body["error"] == "unauthorized"
    assert api.count() == before


async def test_posting_events_with_a_wrong_token_is_401(api: Api) -> None:
    before = api.count()

    status, body = await call(
        api,
        "POST",
        "/events",
        json=new_deal_events(),
        headers={"Authorization": f"Bearer {TOKEN}x"},
    )

    assert status == 401
    assert body["detail"] == "the API token is wrong"
    assert api.count() == before


async def test_server_without_a_token_refuses_every_write(tmp_path: Path) -> None:
    async with running_api(tmp_path, token=None) as api:
        status, body = await call(
            api, "POST", "/events", json=new_deal_events(), headers={"Authorization": "Bearer "}
        )

        assert status == 401
        assert "no API token configured" in body["detail"]


# -- writes: bodies ---------------------------------------------------------------------------
async def test_events_are_appended_and_a_repeat_is_idempotent(api: Api) -> None:
    events = new_deal_events()
    before = api.count()

    first_status, first = await call(api, "POST", "/events", json=events, headers=AUTH)
    again_status, again = await call(api, "POST", "/events", json={"events": events}, headers=AUTH)

    assert (first_status, first["new"], first["duplicates"]) == (201, 2, 0)
    assert [e["version"] for e in first["events"]] == [1, 2]
    assert (again_status, again["new"], again["duplicates"]) == (200, 0, 2)
    assert api.count() == before + 2


async def test_bad_json_is_400(api: Api) -> None:
    status, body = await call(api, "POST", "/events", data=b'[{"stream_id": ', headers=AUTH)

    assert status == 400
    assert "not valid JSON" in body["detail"]


async def test_body_that_is_not_a_list_of_events_is_400(api: Api) -> None:
    status, body = await call(api, "POST", "/events", json={"event": {}}, headers=AUTH)

    assert status == 400
    assert body["error"] == "bad_request"


async def test_body_over_the_limit_is_413_and_writes_nothing(api: Api) -> None:
    events = new_deal_events()
    events[0]["source_title"] = "x" * 400
    padded = json.dumps(events).encode() + b" " * (1024 * 1024)
    before = api.count()

    status, body = await call(api, "POST", "/events", data=padded, headers=AUTH)

    assert status == 413
    assert body["error"] == "payload_too_large"
    assert api.count() == before


async def test_one_invalid_event_is_422_and_nothing_is_written(api: Api) -> None:
    events = new_deal_events()
    events[1]["occurred_at"] = "not a date"
    before = api.count()

    status, body = await call(api, "POST", "/events", json=events, headers=AUTH)

    assert status == 422
    assert body["error"] == "invalid_events"
    assert [e["index"] for e in body["errors"]] == [1]
    assert "occurred_at" in body["errors"][0]["reason"]
    assert api.count() == before


async def test_event_the_store_refuses_is_422_and_nothing_is_written(api: Api) -> None:
    orphan = make_terms_revision("acme-api-never-reported", capacity_mw=10).to_json_dict()
    before = api.count()

    status, body = await call(
        api, "POST", "/events", json=[*new_deal_events(), orphan], headers=AUTH
    )

    assert status == 422
    assert "does not exist yet" in body["detail"]
    assert api.count() == before


async def test_expected_version_conflict_is_409(api: Api) -> None:
    revision = make_terms_revision(LEDGER_DEAL.removeprefix("deal:"), capacity_mw=42)
    stale = {**revision.to_json_dict(), "expected_version": 0}
    before = api.count()

    status, body = await call(api, "POST", "/events", json=[stale], headers=AUTH)

    assert status == 409
    assert body["error"] == "version_conflict"
    assert body["stream_id"] == LEDGER_DEAL and body["expected_version"] == 0
    assert api.count() == before


# -- SQL --------------------------------------------------------------------------------------
async def test_sql_answers_rows_from_the_log(api: Api) -> None:
    status, body = await call(
        api,
        "POST",
        "/sql",
        json={"query": "SELECT lab, count(*) AS n FROM deals WHERE lab = 'anthropic' GROUP BY lab"},
    )

    assert status == 200
    assert body["columns"] == ["lab", "n"]
    assert body["rows"][0][0] == "anthropic" and body["rows"][0][1] > 0
    assert body["truncated"] is False


async def test_sql_sees_events_posted_through_the_api(api: Api) -> None:
    query = {"query": "SELECT count(*) FROM events WHERE stream_id = 'deal:acme-api-1'"}
    _, before = await call(api, "POST", "/sql", json=query)

    await call(api, "POST", "/events", json=new_deal_events(), headers=AUTH)
    status, after = await call(api, "POST", "/sql", json=query)

    assert before["rows"] == [[0]]
    assert status == 200
    assert after["rows"] == [[2]]
    assert after["snapshot_seq"] == api.services.store.head
    assert snapshot_path_for(api.db).exists()
    assert not list(api.db.parent.glob("*.tmp-*"))


async def test_sql_write_statement_is_refused_with_400(api: Api) -> None:
    before = api.count()

    status, body = await call(api, "POST", "/sql", json={"query": "DELETE FROM events"})

    assert status == 400
    assert body["error"] == "sql_refused"
    assert "DELETE" in body["detail"]
    assert api.count() == before


async def test_sql_cannot_read_files(api: Api) -> None:
    status, body = await call(
        api, "POST", "/sql", json={"query": f"SELECT * FROM read_csv('{api.db}')"}
    )

    assert status == 400
    assert body["error"] in ("sql_refused", "sql_error")


async def test_sql_past_the_time_limit_is_400_with_a_clear_detail(tmp_path: Path) -> None:
    async with running_api(tmp_path, sql_timeout_s=0.3) as api:
        status, body = await call(
            api,
            "POST",
            "/sql",
            json={"query": "SELECT sum(hash(i)) FROM range(1000000000000) t(i)"},
        )

        assert status == 400
        assert body["error"] == "sql_timeout"
        assert "longer than 0.3 s" in body["detail"]


async def test_sql_body_without_a_query_is_400(api: Api) -> None:
    status, body = await call(api, "POST", "/sql", json={"sql": "SELECT 1"})

    assert status == 400
    assert "query" in body["detail"]


# -- errors and the contract ------------------------------------------------------------------
async def test_unexpected_error_is_500_without_internals_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals at /srv/computewatch")

    async with running_api(tmp_path, extra_routes={"/boom": boom}) as api:
        with caplog.at_level(logging.ERROR, logger="bot.api"):
            status, body = await call(api, "GET", "/boom")

    assert status == 500
    assert body["error"] == "internal_error"
    assert "secret" not in json.dumps(body)
    assert len([r for r in caplog.records if r.exc_info]) == 1


async def test_openapi_document_describes_exactly_the_routes(api: Api) -> None:
    app = make_api(
        ApiDeps(events=api.writer, context=api.services.context, commands=api.services.commands)
    )
    routes = {
        (r.resource.canonical, r.method.lower())
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }

    status, document = await call(api, "GET", "/openapi.json")

    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert status == 200
    assert document["openapi"].startswith("3.1")
    assert documented == routes
    assert document == json.loads(json.dumps(openapi_document()))
    for path, ops in document["paths"].items():
        in_path = {
            p["name"] for op in ops.values() for p in op.get("parameters", []) if p["in"] == "path"
        }
        assert in_path == {part[1:-1] for part in path.split("/") if part.startswith("{")}


# -- no input makes a 500 ---------------------------------------------------------------------
class ThreadedApi:
    """The API in a thread of its own, so that Hypothesis can call it from a plain test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_api(self.directory, token=SecretStr(TOKEN)) as api:
            self.api = api
            self.port = int(str(api.http._base_url.port))  # noqa: SLF001
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ThreadedApi:
        self._thread.start()
        assert self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


@pytest.fixture(scope="module")
def threaded_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedApi]:
    with ThreadedApi(tmp_path_factory.mktemp("hypothesis-api")) as server:
        yield server


# Strings may hold lone surrogates: JSON can escape them ("\\ud800"), Python decodes them.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
EVENT_KEYS = (
    "stream_id",
    "type",
    "schema",
    "occurred_at",
    "actor",
    "source_url",
    "payload",
    "event_id",
    "idempotency_key",
    "expected_version",
    "seq",
)
EVENTISH = st.dictionaries(st.sampled_from(EVENT_KEYS), JSON, max_size=8)
BODIES = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    st.lists(EVENTISH, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    ANY_TEXT.map(lambda q: json.dumps({"query": q}).encode()),
)
GET_PATHS = (
    "/health",
    "/positions/anthropic",
    "/positions/x",
    "/compare",
    "/deals",
    "/deals/anthropic",
    "/openapi.json",
)
QUERY_NAMES = st.sampled_from(
    ("as_of", "known_at", "labs", "lab", "status", "kind", "since", "page", "x")
)
QUERY_TEXT = st.text(max_size=15) | st.sampled_from(
    ("2026-01-01", "0000-00-00", "9999-12-31", "anthropic,openai", "-1", "99999999999")
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=BODIES, authorised=st.booleans())
def test_no_body_posted_to_events_or_sql_gives_500(
    threaded_api: ThreadedApi, body: bytes, authorised: bool
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"} if authorised else {}

    statuses = {threaded_api.request("POST", path, body, headers) for path in ("/events", "/sql")}

    assert all(s < 500 for s in statuses), statuses


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(GET_PATHS) | st.text(max_size=20).map(lambda t: "/" + quote(t)),
    query=st.lists(st.tuples(QUERY_NAMES, QUERY_TEXT), max_size=4),
)
def test_no_query_string_on_a_get_route_gives_500(
    threaded_api: ThreadedApi, path: str, query: list[tuple[str, str]]
) -> None:
    target = path + ("?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query) if query else "")

    status = threaded_api.request("GET", target)

    assert status < 500, target


async def test_the_snapshot_file_catches_up_with_writes_without_any_sql_request(
    tmp_path: Path,
) -> None:
    async with running_api(tmp_path, token=SecretStr(TOKEN), snapshot_refresh_s=0.05) as api:
        snapshot = api.db.with_name(api.db.name + ".snapshot.duckdb")
        before = api.count()
        response = await api.http.post(
            "/events",
            json=new_deal_events("acme-snapshot-1"),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status == 201

        deadline = asyncio.get_running_loop().time() + 10
        seen = before
        while seen != before + 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            con = duckdb.connect(str(snapshot), read_only=True)
            try:
                seen = con.execute("SELECT count(*) FROM events").fetchone()[0]
            finally:
                con.close()

    assert seen == before + 2


async def test_a_request_line_too_long_for_the_parser_is_one_warning_not_a_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    url = api.http._base_url  # noqa: SLF001 - the test's own session
    assert url is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    with caplog.at_level(logging.INFO, logger="aiohttp.server"):
        writer.write(b"GET /positions/" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        status_line = await reader.readline()
        writer.close()

    assert status_line.split()[1] == b"400"
    logged = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.levelname for r in logged] == ["WARNING"]
    assert "malformed request" in logged[0].getMessage()
    assert logged[0].exc_info is None  # no traceback
    assert (await api.http.get("/health")).status == 200  # and the API goes on
