"""The HTTP API (aiohttp): positions, comparisons, deals, read-only SQL; token-guarded appends."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMessage
from pydantic import SecretStr, ValidationError

from bot.answer_cache import DEFAULT_SIZE as DEFAULT_ANSWER_CACHE_SIZE
from bot.answer_cache import AnswerCache, answer_key
from bot.answers import Answer
from bot.backup import TAR_TYPE, send_backup
from bot.commands.deals import resolve_deal_id
from bot.commands.options import parse_party
from bot.commands.registry import CommandContext, CommandRegistry, parse_arguments
from bot.errors import UserInputError
from bot.services import Services
from bot.settings import Settings
from events.envelope import NewEvent
from events.errors import DomainError
from store.errors import (
    ConcurrencyError,
    IdempotencyKeyReuseError,
    InvalidEventError,
    StoreError,
    UnknownStreamError,
)
from store.facade import AsyncEventStore
from store.sandbox import SqlQueryError, SqlRefusedError, SqlTimeoutError
from store.snapshot import SnapshotSql

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RawOptions = dict[str, str | list[str] | None]

DEFAULT_MAX_BODY = 1024 * 1024
# Queries run in threads of their own; a few at a time keep the sandbox from starving the bot.
SQL_CONCURRENCY = 4
# Shown instead of an unexpected error's text, which may hold paths or internals.
GENERIC_DETAIL = "Something went wrong on our side; the error was logged."
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
ROUTE_HINT = "GET /openapi.json lists the routes."


class NotFoundError(UserInputError):
    """Raised when a request names a lab or deal that computewatch does not know."""


class UnauthorizedError(UserInputError):
    """Raised when a write comes without the right Bearer token, or the server has none."""


class EventsRejectedError(UserInputError):
    """Raised when events of a POST /events body fail validation; nothing was written."""

    def __init__(self, problems: list[dict[str, Any]], total: int) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} of {total} event(s) are invalid; nothing was written")


@dataclass(frozen=True)
class ApiDeps:
    """What the API works with; the writer (`events`) must be started by the caller."""

    events: AsyncEventStore
    context: CommandContext
    commands: CommandRegistry
    # Without a token, POST /events answers 401: a write API is never open by accident.
    token: SecretStr | None = None
    max_body: int = DEFAULT_MAX_BODY
    # Where the read-only copy for /sql goes (default `<db>.snapshot.duckdb`).
    snapshot_path: Path | None = None
    sql_timeout_s: float = 5.0
    sql_max_rows: int = 1000
    # How often the snapshot catches up with new writes when nobody asks /sql, so that the
    # duckdb CLI or pandas reading the snapshot file see the log at most this late.
    snapshot_refresh_s: float = 10.0
    # Answers kept while the log is unchanged (ANSWER_CACHE_SIZE; 0: every request reads).
    answer_cache_size: int = DEFAULT_ANSWER_CACHE_SIZE


DEPS = web.AppKey("deps", ApiDeps)
SNAPSHOT = web.AppKey("snapshot", SnapshotSql)
SQL_SLOTS = web.AppKey("sql_slots", asyncio.Semaphore)
ANSWERS = web.AppKey("answers", AnswerCache)


def api_deps(services: Services, events: AsyncEventStore, settings: Settings) -> ApiDeps:
    """The API's dependencies from the opened services, their writer and the settings."""
    return ApiDeps(
        events=events,
        context=services.context,
        commands=services.commands,
        token=settings.computewatch_api_token,
        max_body=settings.computewatch_api_max_body,
        answer_cache_size=settings.answer_cache_size,
    )


def make_api(deps: ApiDeps) -> web.Application:
    """The API application; nothing is opened until it starts (see `snapshot_ctx`)."""
    app = web.Application(middlewares=[json_errors], client_max_size=deps.max_body)
    app[DEPS] = deps
    app[SNAPSHOT] = SnapshotSql(
        deps.events.store,
        deps.snapshot_path,
        timeout_s=deps.sql_timeout_s,
        max_rows=deps.sql_max_rows,
    )
    app[SQL_SLOTS] = asyncio.Semaphore(SQL_CONCURRENCY)
    app[ANSWERS] = AnswerCache(deps.answer_cache_size)
    app.cleanup_ctx.append(snapshot_ctx)
    add_routes(app)
    return app


def add_routes(app: web.Application) -> None:
    """Every route of the API; `openapi_document()` describes exactly these."""
    app.router.add_get("/health", health)
    app.router.add_get("/positions/{lab}", get_position)
    app.router.add_get("/compare", get_compare)
    app.router.add_get("/deals", get_deals)
    app.router.add_get("/deals/{id}", get_deal)
    app.router.add_post("/sql", post_sql)
    app.router.add_post("/events", post_events)
    app.router.add_post("/backup", post_backup)
    app.router.add_get("/openapi.json", get_openapi)


class MalformedRequestLog(logging.Filter):
    """aiohttp logs a request its parser refuses (a request line over 8 KiB, a bad header) as
    an ERROR with a traceback, before any handler runs; the client is answered 400 all the same.
    It is the client's mistake: one WARNING line, so that junk traffic cannot flood the log with
    tracebacks or pass for a fault of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BadHttpMessage):
            record.msg = f"{record.getMessage()}: refused a malformed request ({exc.message})"
            record.args = None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_malformed_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestLog) for f in server_log.filters):
        server_log.addFilter(MalformedRequestLog())


async def serve_api(deps: ApiDeps, host: str, port: int) -> web.AppRunner:
    """Start the API on host:port (0 picks a free port); `await runner.cleanup()` stops it."""
    _quiet_malformed_requests()
    runner = web.AppRunner(make_api(deps), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("HTTP API listening on %s", ", ".join(map(str, runner.addresses)))
    return runner


async def snapshot_ctx(app: web.Application) -> AsyncIterator[None]:
    """Make the first SQL snapshot at startup; close it at shutdown."""
    snapshot = app[SNAPSHOT]
    try:
        await asyncio.to_thread(snapshot.refresh)
    except StoreError as exc:
        # /sql retries on its first call; the rest of the API does not need the snapshot.
        log.warning("no SQL snapshot at startup: %s", exc)
    keeper = asyncio.create_task(_keep_snapshot_fresh(snapshot, app[DEPS].snapshot_refresh_s))
    yield
    keeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await keeper
    await asyncio.to_thread(snapshot.close)


async def _keep_snapshot_fresh(snapshot: SnapshotSql, every_s: float) -> None:
    """Refresh the snapshot file after writes, whether or not anyone queries /sql."""
    while True:
        await asyncio.sleep(every_s)
        if snapshot.head != snapshot.store.head:
            try:
                await asyncio.to_thread(snapshot.refresh)
            except StoreError as exc:
                log.warning("SQL snapshot refresh failed (will retry): %s", exc)


# -- errors -----------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    # The same fallback as `computewatch ask --json`, so both print the same JSON.
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


dumps = partial(json.dumps, ensure_ascii=False, default=_json_default)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def error_response(status: int, code: str, detail: str, **extra: Any) -> web.Response:
    return json_response({"error": code, "detail": detail, **extra}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON {"error": code, "detail": ...}; unexpected ones logged once."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except UnauthorizedError as exc:
        response = error_response(401, "unauthorized", str(exc))
        response.headers[hdrs.WWW_AUTHENTICATE] = "Bearer"
        return response
    except NotFoundError as exc:
        return error_response(404, "not_found", str(exc))
    except EventsRejectedError as exc:
        return error_response(422, "invalid_events", str(exc), errors=exc.problems)
    except UserInputError as exc:
        return error_response(400, "bad_request", str(exc))
    except ConcurrencyError as exc:
        return error_response(
            409,
            "version_conflict",
            str(exc),
            stream_id=exc.stream_id,
            expected_version=exc.expected,
            actual_version=exc.actual,
        )
    except IdempotencyKeyReuseError as exc:
        return error_response(409, "idempotency_conflict", str(exc))
    except (InvalidEventError, UnknownStreamError) as exc:
        # The store's checks (order, references, dates) name the deal or event at fault.
        detail = f"{exc}; nothing was written"
        return error_response(422, "invalid_events", detail, errors=[{"reason": str(exc)}])
    except SqlTimeoutError as exc:
        # 400, not 408: clients may repeat a request on 408, which would rerun a slow query.
        return error_response(400, "sql_timeout", str(exc))
    except SqlRefusedError as exc:
        return error_response(400, "sql_refused", str(exc))
    except SqlQueryError as exc:
        return error_response(400, "sql_error", str(exc))
    except StoreError as exc:
        log.warning("%s %s: store unavailable: %s", request.method, request.path, exc)
        return error_response(503, "unavailable", str(exc))
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", GENERIC_DETAIL)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    code = HTTP_CODES.get(exc.status, "http_error")
    if exc.status == 404:
        detail = f"There is no route {request.method} {request.path}. {ROUTE_HINT}"
    elif exc.status == 405:
        allowed = exc.headers.get(hdrs.ALLOW, "")
        detail = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    else:
        detail = exc.text or exc.reason
    response = error_response(exc.status, code, detail)
    if hdrs.ALLOW in exc.headers:
        response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
    return response


# -- request helpers --------------------------------------------------------------------------
def query_params(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string as option text; unknown or repeated parameters are refused."""
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise UserInputError(
            f"unknown query parameter(s): {', '.join(unknown)}; "
            f"this route takes: {', '.join(allowed) or 'none'}"
        )
    params: dict[str, str] = {}
    for name in allowed:
        values = request.query.getall(name, [])
        if len(values) > 1:
            raise UserInputError(f"{name} is given {len(values)} times; give it once")
        if values:
            params[name] = values[0]
    return params


async def read_json(request: web.Request) -> Any:
    """The body as strict JSON; 413 past client_max_size, UserInputError for anything else."""
    raw = await request.read()
    if not raw.strip():
        raise UserInputError("the request body is empty; send JSON")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UserInputError(
            f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except UnicodeDecodeError:
        raise UserInputError("the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise UserInputError(f"the body is not valid JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _is_unicode(text: str) -> bool:
    # JSON may escape lone surrogates ("\\ud800"), which DuckDB cannot take as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def resolve_lab(ctx: CommandContext, text: str, *, option: str) -> str:
    """A lab's slug; an unknown name is a 404 with the CLI's message and suggestions."""
    try:
        return parse_party(ctx.registry, text, option=option)
    except UserInputError as exc:
        raise NotFoundError(str(exc)) from exc


# -- reads ------------------------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    events = await deps.events.read(deps.events.store.count)
    return json_response(
        {
            "status": "ok",
            "events": events,
            "head": deps.events.store.head,
            "sql_snapshot_seq": request.app[SNAPSHOT].head,
        }
    )


async def get_position(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    params = query_params(request, ("as_of", "known_at"))
    slug = resolve_lab(deps.context, request.match_info["lab"], option="lab")
    answer = await command_answer(request, "position", {"lab": slug, **params})
    return json_response(answer.data)


async def get_compare(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    params = query_params(request, ("labs", "as_of", "known_at"))
    names = [name for name in params.pop("labs", "").split(",") if name.strip()]
    labs = [resolve_lab(deps.context, name, option="labs") for name in names]
    answer = await command_answer(request, "compare", {"labs": labs, **params})
    return json_response(answer.data)


async def get_deals(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    params = query_params(request, ("lab", "status", "kind", "since", "page"))
    raw: RawOptions = dict(params)
    if params.get("lab", "").strip():
        raw["lab"] = resolve_lab(deps.context, params["lab"], option="lab")
    answer = await command_answer(request, "deals", raw)
    return json_response(answer.data)


async def get_deal(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    query_params(request, ())
    deal_id = await deps.events.read(_deal_id, deps, request.match_info["id"])
    answer = await command_answer(request, "deal", {"id": deal_id})
    return json_response(answer.data)


def _deal_id(deps: ApiDeps, text: str) -> str:
    """The deal a path names (its id, or a unique part of it); a read of the store."""
    try:
        return resolve_deal_id(deps.context, text)
    except UserInputError as exc:
        wanted = text.strip().lower().removeprefix("deal:")
        if not deps.context.queries.deal_ids_containing(wanted, limit=1)[1]:
            raise NotFoundError(str(exc)) from exc
        raise  # a part of several deal ids: ambiguous, not missing


async def command_answer(request: web.Request, name: str, raw: RawOptions) -> Answer:
    """A read-only command's answer: kept while the log is unchanged, and shared by identical
    requests that arrive while it is read (bot/answer_cache.py, as in Discord); otherwise read
    in a worker thread. The options are parsed here first: a bad one is answered at once."""
    deps = request.app[DEPS]
    command = deps.commands.get(name)
    values = parse_arguments(deps.context, command, raw)
    key = answer_key(name, values, deps.events.store.head)
    read = partial(deps.events.read, command.handler, deps.context, **values)
    return await request.app[ANSWERS].get_or_read(key, read)


async def post_sql(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not (isinstance(body, dict) and set(body) == {"query"} and isinstance(body["query"], str)):
        raise UserInputError('send a JSON object {"query": "SELECT ..."} and nothing else')
    if not _is_unicode(body["query"]):
        raise UserInputError(
            "the query holds a lone surrogate (\\ud800-\\udfff); send valid Unicode"
        )
    snapshot = request.app[SNAPSHOT]
    async with request.app[SQL_SLOTS]:
        answer = await asyncio.to_thread(snapshot.run, body["query"])
    result = answer.result
    return json_response(
        {
            "columns": result.columns,
            "types": result.types,
            "rows": [list(row) for row in result.rows],
            "truncated": result.truncated,
            "elapsed_ms": round(result.elapsed_ms, 3),
            "snapshot_seq": answer.snapshot_seq,
        }
    )


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())


# -- writes -----------------------------------------------------------------------------------
def check_token(request: web.Request, token: SecretStr | None) -> None:
    """The request must carry `Authorization: Bearer <token>` with the server's token."""
    secret = token.get_secret_value().strip() if token is not None else ""
    if not secret:
        raise UnauthorizedError(
            "this server has no API token configured (set COMPUTEWATCH_API_TOKEN); "
            "writes through the API are disabled"
        )
    scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise UnauthorizedError("send the API token as 'Authorization: Bearer <token>'")
    # surrogatepass: any header text encodes, and differs from the token unless it is the token.
    if not hmac.compare_digest(
        given.strip().encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass")
    ):
        raise UnauthorizedError("the API token is wrong")


async def post_backup(request: web.Request) -> web.StreamResponse:
    """A consistent backup of the running database, as a tar (see `computewatch backup`)."""
    deps = request.app[DEPS]
    check_token(request, deps.token)
    query_params(request, ())
    return await send_backup(request, deps.events.store)


async def post_events(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    check_token(request, deps.token)
    body = await read_json(request)
    items = body["events"] if isinstance(body, dict) and set(body) == {"events"} else body
    if not isinstance(items, list):
        raise UserInputError('send a JSON list of events, or {"events": [...]}')
    if not items:
        raise UserInputError("the list of events is empty")
    events = await asyncio.to_thread(parse_events, items)
    result = await deps.events.append(events)
    return json_response(
        {
            "new": len(result.recorded),
            "duplicates": len(result.duplicates),
            "head": deps.events.store.head,
            "events": [
                {
                    "event_id": str(e.event_id),
                    "stream_id": e.stream_id,
                    "version": e.version,
                    "seq": e.seq,
                }
                for e in result.recorded
            ],
        },
        status=201 if result.recorded else 200,
    )


def parse_events(items: list[Any]) -> list[NewEvent]:
    """Every item as a NewEvent (actor defaults to "api"), or EventsRejectedError listing all."""
    events: list[NewEvent] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and "actor" not in item:
            item = {**item, "actor": "api"}
        try:
            events.append(NewEvent.from_json_dict(item))
        except (ValidationError, DomainError, ValueError, TypeError) as exc:
            problems.append({"index": index, "reason": _reason(exc)})
    if problems:
        raise EventsRejectedError(problems, len(items))
    return events


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return str(exc)


# -- OpenAPI ----------------------------------------------------------------------------------
def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "Bad input (query parameter, date, JSON body or SQL).",
        401: "Missing or wrong Bearer token, or the server has no token configured.",
        404: "Unknown lab, deal or route.",
        409: "Version conflict (expected_version) or an idempotency key reused for another event.",
        413: "The body is larger than the server's limit.",
        422: "Events that fail validation; nothing was written.",
        500: "Unexpected error (logged); the detail is generic.",
        503: "The event store is not available.",
    }
    return {
        str(s): {"description": meaning[s], "content": _json_content(_ref("Error"))}
        for s in statuses
    }


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of exactly the routes that `add_routes` declares."""
    date = {"pattern": r"^\d{4}-\d{2}-\d{2}$", "examples": ["2025-12-31"]}
    as_of = _query("as_of", "Valid date YYYY-MM-DD (default: now).", **date)
    known_at = _query("known_at", "As known on YYYY-MM-DD (default: now).", **date)
    ok = "application/json answer"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "computewatch API",
            "version": "1",
            "description": "Compute positions of AI labs, derived from a dated event log. "
            "Answers are the same JSON as `computewatch ask ... --json`.",
        },
        "paths": {
            "/health": {
                "get": {
                    "summary": "Liveness and the log's size",
                    "operationId": "health",
                    "responses": {
                        "200": {"description": ok, "content": _json_content(_ref("Health"))},
                        **_errors(500, 503),
                    },
                }
            },
            "/positions/{lab}": {
                "get": {
                    "summary": "A lab's compute position (as `/position`)",
                    "operationId": "getPosition",
                    "parameters": [
                        _path("lab", "Slug, name or alias of the lab."),
                        as_of,
                        known_at,
                    ],
                    "responses": {
                        "200": {"description": ok, "content": _json_content(_ref("Position"))},
                        **_errors(400, 404, 500, 503),
                    },
                }
            },
            "/compare": {
                "get": {
                    "summary": "Two to six labs side by side (as `/compare`)",
                    "operationId": "compare",
                    "parameters": [
                        {
                            **_query("labs", "Comma-separated labs, e.g. anthropic,openai."),
                            "required": True,
                        },
                        as_of,
                        known_at,
                    ],
                    "responses": {
                        "200": {
                            "description": ok,
                            "content": _json_content(
                                {
                                    "type": "object",
                                    "required": ["labs", "ratios", "overlaps"],
                                    "properties": {
                                        "as_of": {"type": ["string", "null"]},
                                        "known_at": {"type": ["string", "null"]},
                                        "labs": {"type": "array", "items": _ref("Position")},
                                        "ratios": {"type": "object"},
                                        "overlaps": {"type": "array"},
                                    },
                                }
                            ),
                        },
                        **_errors(400, 404, 500, 503),
                    },
                }
            },
            "/deals": {
                "get": {
                    "summary": "Deals, newest first, ten a page (as `/deals`)",
                    "operationId": "listDeals",
                    "parameters": [
                        _query("lab", "Only this lab."),
                        _query(
                            "status",
                            "Only this status (rumored, negotiating, loi, signed, "
                            "operational, shelved, cancelled).",
                        ),
                        _query("kind", "Only this kind of deal."),
                        _query("since", "Changed on or after YYYY-MM-DD.", **date),
                        _query("page", "Page number, from 1.", pattern=r"^\d+$"),
                    ],
                    "responses": {
                        "200": {
                            "description": ok,
                            "content": _json_content(
                                {
                                    "type": "object",
                                    "required": ["total", "page", "pages", "deals"],
                                    "properties": {
                                        "total": {"type": "integer"},
                                        "page": {"type": "integer"},
                                        "pages": {"type": "integer"},
                                        "deals": {"type": "array", "items": {"type": "object"}},
                                    },
                                }
                            ),
                        },
                        **_errors(400, 404, 500, 503),
                    },
                }
            },
            "/deals/{id}": {
                "get": {
                    "summary": "One deal's state and timeline (as `/deal`)",
                    "operationId": "getDeal",
                    "parameters": [_path("id", "The deal id, or a unique part of it.")],
                    "responses": {
                        "200": {
                            "description": ok,
                            "content": _json_content(
                                {
                                    "type": "object",
                                    "required": ["deal_id", "state", "events"],
                                    "properties": {
                                        "deal_id": {"type": "string"},
                                        "state": {"type": ["object", "null"]},
                                        "events": {"type": "array", "items": {"type": "object"}},
                                    },
                                }
                            ),
                        },
                        **_errors(400, 404, 500, 503),
                    },
                }
            },
            "/sql": {
                "post": {
                    "summary": "One read-only SQL query over a snapshot of the log",
                    "operationId": "runSql",
                    "requestBody": {
                        "required": True,
                        "content": _json_content(
                            {
                                "type": "object",
                                "required": ["query"],
                                "additionalProperties": False,
                                "properties": {
                                    "query": {
                                        "type": "string",
                                        "examples": ["SELECT * FROM deals LIMIT 5"],
                                    }
                                },
                            }
                        ),
                    },
                    "responses": {
                        "200": {"description": ok, "content": _json_content(_ref("SqlResult"))},
                        **_errors(400, 413, 500, 503),
                    },
                }
            },
            "/events": {
                "post": {
                    "summary": "Append events, all or nothing (Bearer token required)",
                    "operationId": "appendEvents",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": _json_content(
                            {
                                "oneOf": [
                                    {"type": "array", "minItems": 1, "items": _ref("Event")},
                                    {
                                        "type": "object",
                                        "required": ["events"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "events": {
                                                "type": "array",
                                                "minItems": 1,
                                                "items": _ref("Event"),
                                            }
                                        },
                                    },
                                ]
                            }
                        ),
                    },
                    "responses": {
                        "201": {
                            "description": "Some events were new",
                            "content": _json_content(_ref("AppendResult")),
                        },
                        "200": {
                            "description": "Every event was already stored (idempotent repeat)",
                            "content": _json_content(_ref("AppendResult")),
                        },
                        **_errors(400, 401, 409, 413, 422, 500, 503),
                    },
                }
            },
            "/backup": {
                "post": {
                    "summary": "A consistent backup of the database (Bearer token required)",
                    "description": "Parquet per table and manifest.json (counts, log digest, "
                    "SHA-256 per file), as a tar; what `computewatch backup DIR` unpacks.",
                    "operationId": "backup",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "The backup directory as a tar",
                            "content": {TAR_TYPE: {"schema": {"type": "string"}}},
                        },
                        **_errors(400, 401, 500, 503),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document",
                            "content": _json_content({"type": "object"}),
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
    }


def _schemas() -> dict[str, Any]:
    number = {"type": "number"}
    nullable_date = {"type": ["string", "null"], "format": "date"}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": {
                "error": {"type": "string", "examples": ["not_found"]},
                "detail": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}},
                    },
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "events", "head"],
            "properties": {
                "status": {"const": "ok"},
                "events": {"type": "integer"},
                "head": {"type": "integer"},
                "sql_snapshot_seq": {"type": "integer"},
            },
        },
        "Position": {
            "type": "object",
            "required": [
                "lab",
                "as_of",
                "known_at",
                "capacity_mw",
                "committed_usd",
                "pipeline_usd",
                "backing_usd",
                "by_kind",
                "by_provider",
                "provider_hhi",
                "chips",
                "deals",
            ],
            "properties": {
                "lab": {"type": "string"},
                "as_of": nullable_date,
                "known_at": nullable_date,
                "capacity_mw": {
                    "type": "object",
                    "properties": {
                        b: number for b in ("operational", "contracted", "pipeline", "rumored")
                    },
                },
                "committed_usd": number,
                "pipeline_usd": number,
                "backing_usd": number,
                "by_kind": {"type": "object"},
                "by_provider": {"type": "object"},
                "provider_hhi": {"type": ["number", "null"]},
                "chips": {"type": "array", "items": {"type": "object"}},
                "deals": {"type": "integer"},
            },
        },
        "SqlResult": {
            "type": "object",
            "required": ["columns", "rows", "truncated"],
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "types": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": {"type": "array"}},
                "truncated": {"type": "boolean"},
                "elapsed_ms": number,
                "snapshot_seq": {"type": "integer", "description": "The log position answered."},
            },
        },
        "Event": {
            "type": "object",
            "required": ["stream_id", "type", "occurred_at", "payload"],
            "description": "The project's event JSON (as `computewatch import` reads); "
            "seq, version and recorded_at are assigned by the store.",
            "properties": {
                "stream_id": {"type": "string", "examples": ["deal:acme-cloud-1"]},
                "type": {"type": "string", "examples": ["DealReported"]},
                "schema": {"type": "integer"},
                "occurred_at": {"type": "string", "format": "date-time"},
                "actor": {"type": "string", "default": "api"},
                "source_url": {"type": "string"},
                "source_title": {"type": "string"},
                "event_id": {"type": "string", "format": "uuid"},
                "idempotency_key": {"type": "string"},
                "expected_version": {"type": "integer", "minimum": 0},
                "payload": {"type": "object"},
            },
        },
        "AppendResult": {
            "type": "object",
            "required": ["new", "duplicates", "head", "events"],
            "properties": {
                "new": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "head": {"type": "integer"},
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "event_id": {"type": "string"},
                            "stream_id": {"type": "string"},
                            "version": {"type": "integer"},
                            "seq": {"type": "integer"},
                        },
                    },
                },
            },
        },
    }
