# ruff: noqa: F811 - the fixtures imported from discord_kit are used as arguments
"""/sql query through the real discord.py client and the fake Discord: the same sandbox as
`computewatch sql` and the HTTP API, on the read-only snapshot; short results as a code-block
table, long ones as result.csv, refusals and timeouts privately, and the bot answering other
commands while a slow query runs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from bot.discord_app.client import ComputewatchBot
from bot.services import Services
from store.snapshot import SnapshotSql
from tests.e2e.discord_kit import (  # noqa: F401 - fixtures
    bot,
    make_bot,
    seeded_db,
    server,
    services,
)
from tests.fakediscord import CallbackType, FakeDiscord, InteractionRecord, running

SLOW_QUERY = "SELECT count(*) FROM range(1000000000000)"


async def sql(server: FakeDiscord, query: str) -> InteractionRecord:
    return await server.invoke_command("sql", {"query": query}, subcommand="query")


async def test_a_short_result_is_a_table_in_the_reply(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    head = services.store.head

    record = await sql(server, "SELECT count(*) AS events, max(seq) AS last_seq FROM events")

    reply = await record.wait_reply(within=10)
    assert record.callbacks[0].type == CallbackType.CHANNEL_MESSAGE
    assert not reply.ephemeral and reply.attachments == []
    lines = reply.content.split("```")[3].strip().splitlines()  # the table's code block
    assert lines[0].split() == ["events", "last_seq"]
    assert lines[-1].split() == [str(head), str(head)]
    assert reply.content.endswith(f"the log up to event #{head}")


async def test_a_long_result_comes_as_a_csv_attachment(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    head = services.store.head

    record = await sql(server, "SELECT seq, stream_id, type FROM events ORDER BY seq")

    reply = await record.wait_reply(within=10)
    [attachment] = reply.attachments
    rows = list(csv.reader(io.StringIO(attachment.data.decode())))
    assert attachment.filename == "result.csv"
    assert len(reply.content) <= 2000 and "attached as result.csv" in reply.content
    assert rows[0] == ["seq", "stream_id", "type"]
    assert len(rows) - 1 == min(head, 1000)
    assert [int(r[0]) for r in rows[1:4]] == [1, 2, 3]
    assert rows[1][2] == "DealReported" and rows[1][1].startswith("deal:")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("COPY (SELECT 1) TO '{tmp}/out.csv'", "Only queries are allowed here"),
        ("SELECT * FROM read_csv('{tmp}/secret.csv')", "not allowed here"),
        ("ATTACH '{tmp}/other.duckdb' AS other", "Only queries are allowed here"),
        ("SELECT * FROM no_such_table", "no_such_table"),
    ],
    ids=["copy-to", "read-csv", "attach", "unknown-table"],
)
async def test_a_refused_or_failed_query_gets_the_sandboxs_message_privately(
    server: FakeDiscord,
    services: Services,
    bot: ComputewatchBot,
    tmp_path: Path,
    query: str,
    message: str,
) -> None:
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")

    record = await sql(server, query.format(tmp=tmp_path))

    reply = await record.wait_reply(within=10)
    assert reply.ephemeral
    assert message in reply.content
    assert "hunter2" not in reply.content
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()


async def test_a_slow_query_is_stopped_by_the_time_limit_while_other_commands_are_answered(
    server: FakeDiscord, services: Services, tmp_path: Path
) -> None:
    snapshot = SnapshotSql(services.store, tmp_path / "snapshot.duckdb", timeout_s=2.5)
    try:
        async with running(make_bot(server, services, sql=snapshot)):
            slow = await sql(server, SLOW_QUERY)

            other = await server.invoke_command("position", {"lab": "anthropic"})
            answered = await other.wait_reply(within=2.4)
            still_running = slow.replies == []
            await slow.wait_response(within=3)  # deferred: the query outlives Discord's 3 s

            [stopped] = await slow.wait_followups(1, within=6)
    finally:
        snapshot.close()

    assert answered.embeds[0]["title"].startswith("Anthropic")
    assert still_running
    assert slow.callbacks[0].type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert stopped.ephemeral
    assert stopped.content == "The query ran longer than 2.5 s and was stopped."
    assert slow.original is not None and slow.original.deleted  # no public "thinking..." left
