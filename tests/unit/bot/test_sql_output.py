"""The chat reply to a SQL query: a code-block table when it fits in one message, else a summary
with the rows as CSV; never more than the message limit."""

from __future__ import annotations

import csv
import io

from bot.sql_output import CSV_NAME, MESSAGE_LIMIT, chat_reply, render_table
from store.sandbox import QueryResult


def result(rows: list[tuple[object, ...]], *, truncated: bool = False) -> QueryResult:
    return QueryResult(
        columns=["lab", "deals"],
        types=["VARCHAR", "BIGINT"],
        rows=rows,  # type: ignore[arg-type]
        truncated=truncated,
        elapsed_ms=12.4,
    )


def test_a_short_result_is_a_code_block_table_with_the_query_and_what_it_covers() -> None:
    reply = chat_reply(
        result([("acme-ai", 3), ("beta-labs", None)]), query="SELECT 1", snapshot_seq=42
    )

    assert reply.csv is None
    assert reply.content.startswith("```sql\nSELECT 1\n```\n```\n")
    assert "acme-ai" in reply.content and "NULL" in reply.content
    assert reply.content.endswith("2 row(s) in 12 ms · the log up to event #42")


def test_a_long_result_is_summarised_and_sent_as_csv() -> None:
    rows = [(f"lab-{i:04d}", i) for i in range(500)]

    reply = chat_reply(result(rows), query="SELECT lab, deals FROM t", snapshot_seq=7)

    assert len(reply.content) <= MESSAGE_LIMIT
    assert f"500 row(s) × 2 column(s) do not fit in a message: they are attached as {CSV_NAME}" in (
        reply.content
    )
    assert reply.csv is not None
    parsed = list(csv.reader(io.StringIO(reply.csv)))
    assert parsed[0] == ["lab", "deals"]
    assert parsed[1:] == [[lab, str(n)] for lab, n in rows]


def test_a_reply_exactly_at_the_limit_stays_a_table() -> None:
    short = chat_reply(result([("x", 1)]), query="SELECT 1")

    at_limit = chat_reply(result([("x", 1)]), query="SELECT 1", limit=len(short.content))
    over = chat_reply(result([("x", 1)]), query="SELECT 1", limit=len(short.content) - 1)

    assert at_limit.csv is None
    assert over.csv is not None


def test_a_cut_result_says_so() -> None:
    reply = chat_reply(result([("x", 1)], truncated=True), query="SELECT 1")

    assert "rows or long values were cut" in reply.content


def test_backticks_in_values_cannot_end_the_code_block() -> None:
    reply = chat_reply(result([("```@everyone", 1)]), query="SELECT '```'")

    assert reply.content.count("```") == 4  # the query's block and the table's block


def test_a_long_query_is_echoed_shortened_on_one_line() -> None:
    query = "SELECT\n" + ", ".join(f"{i} AS c{i}" for i in range(200))

    reply = chat_reply(result([("x", 1)]), query=query)

    echoed = reply.content.split("\n")[1]
    assert echoed.startswith("SELECT 0 AS c0, 1 AS c1")
    assert len(echoed) == 300 and echoed.endswith("…")


def test_the_table_is_no_wider_than_asked() -> None:
    text = render_table(result([("a" * 300, 1)]), width=60)

    assert max(len(line) for line in text.splitlines()) <= 60
