"""`computewatch sql` and `/sql` in chat: one read-only query through the sandbox, shown as a
table or CSV."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from bot.errors import UserInputError
from bot.services import open_services
from store.sandbox import QueryResult, SqlSandbox, to_csv

# A Discord message holds at most 2000 characters; a code block wider than ~100 wraps on screen.
MESSAGE_LIMIT = 2000
CHAT_TABLE_WIDTH = 100
QUERY_ECHO_CHARS = 300
CSV_NAME = "result.csv"


def _console(width: int) -> Console:
    return Console(
        file=None,
        record=True,
        width=width,
        color_system=None,
        markup=False,
        highlight=False,
        emoji=False,
    )


def _table(result: QueryResult) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    return table


def render_result(result: QueryResult) -> str:
    console = _console(160)
    with console.capture() as capture:
        console.print(_table(result))
        more = " (more rows were cut; raise --max-rows)" if result.truncated else ""
        console.print(f"{len(result.rows)} row(s) in {result.elapsed_ms:.0f} ms{more}")
    return capture.get()


def render_table(result: QueryResult, *, width: int = CHAT_TABLE_WIDTH) -> str:
    """The rows as a plain-text table at most `width` characters wide (long cells fold)."""
    console = _console(width)
    with console.capture() as capture:
        console.print(_table(result))
    return "\n".join(line.rstrip() for line in capture.get().splitlines()).strip("\n")


@dataclass(frozen=True)
class ChatReply:
    """A query's answer as a chat message: a code-block table, or, when that would not fit in
    one message, a summary with the rows as CSV (`csv`) to attach as result.csv."""

    content: str
    csv: str | None = None


def chat_reply(
    result: QueryResult,
    *,
    query: str,
    snapshot_seq: int | None = None,
    limit: int = MESSAGE_LIMIT,
    width: int = CHAT_TABLE_WIDTH,
) -> ChatReply:
    """The reply to a /sql query: the query, then the table or the CSV, then what it covers."""
    echo = _code_block(_shorten(" ".join(query.split()), QUERY_ECHO_CHARS), "sql")
    facts = [f"{len(result.rows)} row(s) in {result.elapsed_ms:.0f} ms"]
    if snapshot_seq is not None:
        facts.append(f"the log up to event #{snapshot_seq}")
    if result.truncated:
        facts.append("rows or long values were cut (computewatch sql --max-rows gives more)")
    footer = " · ".join(facts)
    content = f"{echo}\n{_code_block(render_table(result, width=width))}\n{footer}"
    if len(content) <= limit:
        return ChatReply(content)
    summary = (
        f"{echo}\n{len(result.rows)} row(s) × {len(result.columns)} column(s) do not fit in a "
        f"message: they are attached as {CSV_NAME}.\n{footer}"
    )
    return ChatReply(summary[:limit], csv=to_csv(result))


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


# A ``` inside a code block would end it early; zero-width spaces keep it literal.
_FENCE, _BROKEN_FENCE = "```", "`\u200b`\u200b`"


def _code_block(text: str, language: str = "") -> str:
    return f"{_FENCE}{language}\n{text.replace(_FENCE, _BROKEN_FENCE)}\n{_FENCE}"


def query_running_bot(api_url: str, query: str) -> QueryResult | None:
    """Ask a running bot's API (it holds the database for writing); None when none answers."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=0.5) as response:
            if response.status != 200:
                return None
    except (OSError, ValueError):
        return None
    request = urllib.request.Request(
        f"{api_url}/sql",
        data=json.dumps({"query": query}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        raise UserInputError(f"{detail}") from None
    return QueryResult(
        columns=body["columns"],
        types=body["types"],
        rows=[tuple(r) for r in body["rows"]],
        truncated=body["truncated"],
        elapsed_ms=body["elapsed_ms"],
    )


def run_sql(
    db: Path,
    query: str,
    *,
    max_rows: int,
    timeout_s: float,
    as_csv: bool,
    seed: bool,
    api_url: str | None = None,
) -> int:
    """One query: through the running bot's API when there is one, else on the file itself."""
    result = query_running_bot(api_url, query) if api_url else None
    if result is None:
        if not db.exists():
            open_services(db, seed=seed).close()  # the embedded default: create and seed it
        with SqlSandbox(db, timeout_s=timeout_s, max_rows=max_rows) as sandbox:
            result = sandbox.run(query)
    sys.stdout.write(to_csv(result) if as_csv else render_result(result))
    return 0
