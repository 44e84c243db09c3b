"""Bad /record form fields, generated: the field parsers of bot/discord_app/drafts.py and the real
form, submitted through discord.py against the fake Discord, end in a preview or a clear
message; nothing is written before Confirm, and a refusal writes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bot import Settings, create_bot
from bot.discord_app.drafts import (
    build_event,
    parse_capacity_mw,
    parse_counterparties,
    parse_occurred_at,
    parse_value_usd,
)
from bot.errors import UserInputError
from bot.services import Services, open_services
from events.envelope import NewEvent
from events.parties import default_registry
from events.payloads import (
    CapacityCameOnline,
    DealReported,
    DealStatusChanged,
    DealTermsRevised,
    EventRetracted,
)
from store.clock import ManualClock
from tests.fakediscord import DEFAULT_GUILD_ID, FakeChannel, FakeDiscord, FakeRole, running
from tests.property.junk import (
    ANY_CHAR,
    ANY_TEXT,
    JSON_VALUES,
    JUNK_TEXT,
    NASTY_TEXT,
    LoopThread,
    ShortRepr,
    assert_clear_message,
    bad_input_settings,
)

NOW = datetime(2026, 8, 1, 12, tzinfo=UTC)
REGISTRY = default_registry()


# -- the field parsers ------------------------------------------------------------------------
@bad_input_settings(max_examples=300)
@given(text=JUNK_TEXT | st.none())
def test_each_form_field_is_read_or_refused_with_a_clear_message(text: str | None) -> None:
    parsers = {
        "counterparties": lambda t: parse_counterparties(t, REGISTRY),
        "capacity": parse_capacity_mw,
        "value": parse_value_usd,
        "date": lambda t: parse_occurred_at(t, NOW),
    }
    for name, parse in parsers.items():
        try:
            value = parse(text)
        except UserInputError as exc:
            assert_clear_message(str(exc))
            continue
        if name == "counterparties":
            assert isinstance(value, tuple)
        elif name == "date":
            assert isinstance(value, datetime) and value <= NOW, (text, value)
        else:
            assert value is None or isinstance(value, float), (name, text, value)


PAYLOADS = {
    DealReported: ("lab", "kind", "status", "counterparties", "capacity_mw", "title", "chips"),
    DealTermsRevised: ("capacity_mw", "value_usd", "term_years", "online_from", "counterparties"),
    CapacityCameOnline: ("mw", "note"),
    DealStatusChanged: ("status", "reason"),
    EventRetracted: ("event_id", "reason"),
}
GOOD_FIELDS: dict[str, Any] = {
    "lab": "openai",
    "kind": "cloud_contract",
    "status": "signed",
    "counterparties": ({"party": "oracle", "role": "provider"},),
    "capacity_mw": 1000.0,
    "title": "A deal",
    "value_usd": 2e9,
    "mw": 100.0,
    "reason": "wrong figure",
    "event_id": "019ba5a0-0000-7000-8000-000000000001",
}


@bad_input_settings(max_examples=300)
@given(
    payload_cls=st.sampled_from(sorted(PAYLOADS, key=lambda c: c.__name__)),
    data=st.data(),
    source=NASTY_TEXT | st.just("https://news.example.com/a"),
    expected=st.none() | st.integers() | st.booleans(),
)
def test_a_draft_from_bad_values_is_an_event_or_a_clear_message(
    payload_cls: type, data: st.DataObject, source: str, expected: Any
) -> None:
    names = PAYLOADS[payload_cls]
    fields = {n: GOOD_FIELDS[n] for n in names if n in GOOD_FIELDS}
    bad = data.draw(st.sampled_from(names))
    fields[bad] = data.draw(JSON_VALUES | JUNK_TEXT, label=bad)

    try:
        drafted = build_event(
            stream_id="deal:acme-form-1",
            payload_cls=payload_cls,
            fields=fields,
            occurred_at=NOW,
            actor="discord:1",
            source_url=source,
            expected_version=expected,
        )
    except UserInputError as exc:
        assert_clear_message(str(exc))
        event("refused")
    else:
        assert isinstance(drafted, NewEvent)
        event("drafted")


# -- the real form, through discord.py and the fake Discord -------------------------------------
ANALYST_ROLE_ID = 1_100_000_000_000_000_030
CHANNEL_ID = 1_100_000_000_000_000_010
# The form's inputs and Discord's length limits for them (Discord enforces those, not the bot).
FORM = {
    "Counterparties": 400,
    "Capacity (MW)": 40,
    "Value (USD)": 60,
    "Date (YYYY-MM-DD)": 10,
    "Source URL": 2000,
}
GOOD_FORM = {
    "Counterparties": ["google:provider", "", "AWS", "broadcom:chip_supplier, oracle:landlord"],
    "Capacity (MW)": ["1000", "1.2 GW", ""],
    "Value (USD)": ["$20 billion", "", "3e9"],
    "Date (YYYY-MM-DD)": ["2025-06-01", "", "today"],
    "Source URL": ["https://news.example.com/form"],
}
# Discord sends valid Unicode only (no lone surrogates), and a required input is never empty.
# Inputs are short (Discord's limits), so no 3,000-character junk: it only overruns Hypothesis.
FORM_TEXT = st.one_of(
    NASTY_TEXT,
    ANY_TEXT,
    st.text(ANY_CHAR, min_size=30, max_size=450),
    st.tuples(NASTY_TEXT, ANY_TEXT).map("".join),
).map(lambda t: t.encode("utf-8", "ignore").decode("utf-8"))


@st.composite
def forms(draw: st.DrawFn) -> dict[str, str]:
    """Usable values in every input but one or two, which get junk (within Discord's limits)."""
    bad = draw(st.sets(st.sampled_from(sorted(FORM)), min_size=1, max_size=2))
    values = {}
    for label, limit in FORM.items():
        text = draw(FORM_TEXT if label in bad else st.sampled_from(GOOD_FORM[label]), label=label)
        values[label] = text[:limit]
    if not values["Source URL"].strip():
        values["Source URL"] = "x"
    return values


@dataclass
class Discord(ShortRepr):
    loop: LoopThread
    server: FakeDiscord
    services: Services

    def __repr__(self) -> str:
        return "<fake Discord and bot>"


@pytest.fixture(scope="module")
def discord_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Discord]:
    directory = tmp_path_factory.mktemp("modal")
    seeded = directory / "seeded.duckdb"
    open_services(seeded, clock=ManualClock(NOW)).close()
    db = directory / "bot.duckdb"
    shutil.copy(seeded, db)
    services = open_services(db, seed=False, clock=ManualClock(NOW))
    loop = LoopThread()
    stack = AsyncExitStack()

    async def start() -> FakeDiscord:
        server = FakeDiscord(
            guild_id=DEFAULT_GUILD_ID,
            channels=[FakeChannel(CHANNEL_ID, "general")],
            roles=[FakeRole(ANALYST_ROLE_ID, "analyst")],
        )
        await server.start()
        stack.push_async_callback(server.stop)
        server.patch_discord()
        stack.callback(server.unpatch_discord)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            discord_token="fake-bot-token",
            discord_guild_id=server.guild_id,
            analyst_role_id=ANALYST_ROLE_ID,
            computewatch_db=db,
            discord_charts=False,
        )
        bot = create_bot(settings, services=services, guild_ready_timeout=0.01)
        await stack.enter_async_context(running(bot))
        return server

    try:
        server = loop.run(start())
        yield Discord(loop, server, services)
    finally:
        loop.run(stack.aclose())
        loop.close()
        services.close()


async def submit_record_form(server: FakeDiscord, values: dict[str, str]) -> tuple[Any, Any]:
    command = await server.invoke_command(
        "record",
        {"lab": "anthropic", "kind": "cloud_contract", "status": "signed"},
        roles=[ANALYST_ROLE_ID],
    )
    await command.wait_response(within=10)
    submit = await server.submit_modal(command, values, roles=[ANALYST_ROLE_ID])
    return submit, await submit.wait_reply(within=10)


def confirm_id(message: Any) -> str | None:
    return next((c for c in message.custom_ids() if c.startswith("cw:confirm:yes")), None)


async def confirm(server: FakeDiscord, submit: Any, preview: Any) -> str:
    """Click Confirm; the preview is edited to say what was written, or why not."""
    click = await server.click(submit, confirm_id(preview), roles=[ANALYST_ROLE_ID])
    await click.wait_response(within=10)
    await server.wait_until(lambda: bool(submit.replies[0].content), within=10)
    return str(submit.replies[0].content)


@bad_input_settings(max_examples=80)
@given(values=forms())
def test_the_record_form_with_bad_fields_explains_or_previews_and_writes_only_on_confirm(
    discord_bot: Discord, values: dict[str, str]
) -> None:
    store = discord_bot.services.store
    head = store.head

    submit, reply = discord_bot.loop.run(submit_record_form(discord_bot.server, values))

    assert reply.ephemeral
    assert store.head == head  # nothing before Confirm
    if confirm_id(reply) is None:
        event("refused")
        assert_clear_message(reply.content)
        assert not reply.content.startswith("Something went wrong"), reply.content
        return
    event("previewed")
    said = discord_bot.loop.run(confirm(discord_bot.server, submit, reply))
    if "Written as" in said:
        event("written")
        assert store.head == head + 1
    else:
        event(f"not written: {said[:40]}")
        assert_clear_message(said)
        assert store.head == head
