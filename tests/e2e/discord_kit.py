"""Shared pieces of the Discord end-to-end tests that drive the bot through the fake Discord:
a seeded database per test, the fake server with an analyst role, and the bot built by create_bot.

Import the fixtures into a test module (`from tests.e2e.discord_kit import bot, server, ...`).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot import Settings, create_bot
from bot.discord_app.client import ComputewatchBot
from bot.services import Services, open_services
from store.log import EventStore
from tests.fakediscord import (
    DEFAULT_GUILD_ID,
    MANAGE_GUILD,
    FakeChannel,
    FakeDiscord,
    FakeRole,
    InteractionRecord,
    SentMessage,
    running,
)

CHANNEL_ID = 1_100_000_000_000_000_010
ANALYST_ROLE_ID = 1_100_000_000_000_000_030
MANAGER_ROLE_ID = 1_100_000_000_000_000_020
OTHER_USER_ID = 1_100_000_000_000_000_099
SOURCE = "https://example.com/acme-news"


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database seeded with the bundled ledger per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("seed") / "ledger.duckdb"
    open_services(path).close()
    return path


@pytest.fixture
def services(seeded_db: Path, tmp_path: Path) -> Iterator[Services]:
    db = tmp_path / "computewatch.duckdb"
    shutil.copy(seeded_db, db)
    opened = open_services(db, seed=False)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def server() -> AsyncIterator[FakeDiscord]:
    """The fake Discord with an analyst role and a manager (Manage Server) role."""
    fake = FakeDiscord(
        guild_id=DEFAULT_GUILD_ID,
        channels=[FakeChannel(CHANNEL_ID, "general")],
        roles=[
            FakeRole(ANALYST_ROLE_ID, "analyst"),
            FakeRole(MANAGER_ROLE_ID, "manager", permissions=MANAGE_GUILD),
        ],
    )
    await fake.start()
    fake.patch_discord()
    try:
        yield fake
    finally:
        await fake.stop()


def settings_for(server: FakeDiscord, services: Services, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "discord_token": "fake-bot-token",
        "discord_guild_id": server.guild_id,
        "analyst_role_id": ANALYST_ROLE_ID,
        "computewatch_db": services.store.path,
        "discord_charts": False,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[arg-type]


def make_bot(
    server: FakeDiscord,
    services: Services,
    *,
    settings: dict[str, object] | None = None,
    **kw: object,
) -> ComputewatchBot:
    # A small guild_ready_timeout: on_ready otherwise waits 2 s after the last GUILD_CREATE.
    return create_bot(
        settings_for(server, services, **(settings or {})),
        services=services,
        guild_ready_timeout=0.01,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def bot(server: FakeDiscord, services: Services) -> AsyncIterator[ComputewatchBot]:
    async with running(make_bot(server, services)) as client:
        yield client


async def fill_record_form(
    server: FakeDiscord, counterparties: str
) -> tuple[InteractionRecord, SentMessage]:
    """An analyst's /record of an Anthropic cloud contract (1.5 GW, $20 billion, 2025-06-01,
    with these counterparties), filled in: the form's submission and the preview it shows."""
    command = await server.invoke_command(
        "record",
        {"lab": "anthropic", "kind": "cloud_contract", "status": "signed"},
        roles=[ANALYST_ROLE_ID],
    )
    await command.wait_response()  # the form
    submit = await server.submit_modal(
        command,
        {
            "Counterparties": counterparties,
            "Capacity (MW)": "1.5 GW",
            "Value (USD)": "$20 billion",
            "Date (YYYY-MM-DD)": "2025-06-01",
            "Source URL": SOURCE,
        },
        roles=[ANALYST_ROLE_ID],
    )
    return submit, await submit.wait_reply()


async def record_through_the_form(
    server: FakeDiscord, counterparties: str
) -> tuple[InteractionRecord, SentMessage]:
    """fill_record_form, then Confirm: the form's submission and the preview it showed."""
    submit, preview = await fill_record_form(server, counterparties)
    confirm = await server.click(
        submit, custom_id(preview, "cw:confirm:yes"), roles=[ANALYST_ROLE_ID]
    )
    await confirm.wait_response()
    return submit, preview


@asynccontextmanager
async def writer_held(store: EventStore) -> AsyncIterator[None]:
    """The store's writer busy for the duration, as a checkpoint or a long import keeps it."""
    busy, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._write_lock:  # noqa: SLF001 - the test stands in for the store's own work
            busy.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    busy.wait(5)
    try:
        yield
    finally:
        release.set()
        await asyncio.to_thread(holder.join)


def custom_id(message: SentMessage, prefix: str) -> str:
    """The full custom id of the button whose id starts with prefix (ids carry a suffix)."""
    return next(c for c in message.custom_ids() if c.startswith(prefix))


def buttons(message: SentMessage) -> list[dict]:
    """Every button of the message, as Discord stores it."""
    found: list[dict] = []

    def walk(components: list[dict]) -> None:
        for component in components:
            if component.get("type") == 2:
                found.append(component)
            walk(component.get("components", []))

    walk(message.components)
    return found
