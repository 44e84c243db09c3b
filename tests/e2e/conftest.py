"""Fixtures for end-to-end tests that run the real discord.py client against a fake Discord."""

from collections.abc import AsyncIterator

import pytest

from tests.fakediscord import DEFAULT_GUILD_ID, MANAGE_GUILD, FakeChannel, FakeDiscord, FakeRole

CHANNEL_ID = 1_100_000_000_000_000_010
DIGEST_CHANNEL_ID = 1_100_000_000_000_000_011
MANAGER_ROLE_ID = 1_100_000_000_000_000_020


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started fake Discord that discord.py points at, restored afterwards."""
    server = FakeDiscord(
        guild_id=DEFAULT_GUILD_ID,
        channels=[FakeChannel(CHANNEL_ID, "general"), FakeChannel(DIGEST_CHANNEL_ID, "digest")],
        roles=[FakeRole(MANAGER_ROLE_ID, "manager", permissions=MANAGE_GUILD)],
    )
    await server.start()
    server.patch_discord()
    try:
        yield server
    finally:
        await server.stop()
