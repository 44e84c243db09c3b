"""The weekly digest posted by the running bot, and by `computewatch digest --post`, through the
real discord.py client against the fake Discord, with a controlled clock."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import Settings, create_bot
from bot.cli import main
from bot.digest import last_complete_week, week_bounds
from bot.discord_app.client import ComputewatchBot
from bot.discord_app.cogs.jobs import JobsCog
from bot.runner import serve
from bot.schedule import JOB_ID
from bot.services import Services, open_services
from events.payloads import DigestPosted
from store.clock import ManualClock
from store.log import EventStore
from tests.e2e.conftest import CHANNEL_ID, DIGEST_CHANNEL_ID
from tests.factories import make_deal_reported
from tests.fakediscord import FakeChannel, FakeDiscord, running

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 2026-03-30 09:00 in Berlin (summer time since the Sunday): the digest of 2026-W13.
MONDAY_0900 = datetime(2026, 3, 30, 9, tzinfo=BERLIN)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_0900)


@pytest.fixture
def services(tmp_path: Path, clock: ManualClock) -> Iterator[Services]:
    """A small log: one OpenAI deal recorded in 2026-W13; the store reads the manual clock."""
    db = tmp_path / "computewatch.duckdb"
    with EventStore(db, clock=clock) as store:
        clock.set(datetime(2026, 3, 25, tzinfo=UTC))
        store.append([make_deal_reported("oa-1", lab="openai", capacity_mw=1_000)])
    clock.set(MONDAY_0900)
    opened = open_services(db, seed=False, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def settings_for(server: FakeDiscord, services: Services, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "discord_token": "fake-bot-token",
        "discord_guild_id": server.guild_id,
        "computewatch_db": services.store.path,
        "discord_charts": False,
        "digest_channel_id": str(DIGEST_CHANNEL_ID),
        "digest_cron": "0 9 * * mon",
        "digest_tz": "Europe/Berlin",
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[arg-type]


def make_bot(server: FakeDiscord, services: Services, **overrides: object) -> ComputewatchBot:
    return create_bot(
        settings_for(server, services, **overrides), services=services, guild_ready_timeout=0.01
    )


async def jobs_started(bot: ComputewatchBot, within: float = 10) -> JobsCog:
    """The bot's jobs cog once its scheduler runs (after the catch-up on start)."""
    cog = bot.get_cog("Jobs")
    assert isinstance(cog, JobsCog)
    async with asyncio.timeout(within):
        while cog.scheduler is None:  # noqa: ASYNC110 - the cog offers no event to await
            await asyncio.sleep(0.02)
    return cog


def posted(services: Services) -> list[DigestPosted]:
    return [
        e.payload
        for e in services.store.read_stream(f"digest:{DIGEST_CHANNEL_ID}")
        if isinstance(e.payload, DigestPosted)
    ]


@pytest.fixture
async def bot_before_nine(
    fake_discord: FakeDiscord, services: Services, clock: ManualClock
) -> AsyncIterator[ComputewatchBot]:
    clock.set(MONDAY_0900 - timedelta(hours=1))
    async with running(make_bot(fake_discord, services)) as bot:
        yield bot


async def test_the_bot_posts_the_digest_once_at_the_scheduled_local_time(
    fake_discord: FakeDiscord,
    services: Services,
    clock: ManualClock,
    bot_before_nine: ComputewatchBot,
) -> None:
    jobs = await jobs_started(bot_before_nine)
    job = jobs.scheduler.get_job(JOB_ID)  # type: ignore[union-attr]
    nothing_before_nine = list(fake_discord.messages[DIGEST_CHANNEL_ID])

    # The cron's time comes: the job reads the manual clock, the scheduler runs it now.
    clock.set(MONDAY_0900)
    job.modify(next_run_time=datetime.now(BERLIN))
    message = await fake_discord.wait_for_message(DIGEST_CHANNEL_ID, within=20)
    await job.func()  # a second run of the same week (a retry, a late misfire) posts nothing

    assert nothing_before_nine == []
    next_run = job.next_run_time.astimezone(BERLIN)
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (0, 9, 0)
    assert len(fake_discord.messages[DIGEST_CHANNEL_ID]) == 1
    assert message.embeds[0]["title"].startswith("Weekly digest 2026-W13")
    assert message.embeds[0]["image"]["url"] == "attachment://chart.png"
    assert message.attachments[0].data.startswith(PNG_MAGIC)
    assert [(p.week, p.message_id) for p in posted(services)] == [("2026-W13", str(message.id))]


async def test_a_bot_down_at_the_scheduled_time_posts_once_on_start_and_not_after_a_restart(
    fake_discord: FakeDiscord, services: Services, clock: ManualClock
) -> None:
    clock.set(MONDAY_0900 + timedelta(hours=5))

    async with running(make_bot(fake_discord, services)) as bot:
        message = await fake_discord.wait_for_message(DIGEST_CHANNEL_ID, within=20)
        await jobs_started(bot)
    clock.advance(timedelta(minutes=10))
    async with running(make_bot(fake_discord, services)) as restarted:
        await jobs_started(restarted)

    assert message.embeds[0]["title"].startswith("Weekly digest 2026-W13")
    assert len(fake_discord.messages[DIGEST_CHANNEL_ID]) == 1
    assert [p.week for p in posted(services)] == ["2026-W13"]


async def test_a_bad_digest_time_zone_stops_startup_before_connecting(
    fake_discord: FakeDiscord, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)

    status = await serve(
        settings_for(fake_discord, services, digest_tz="Mars/Olympus"),
        services,
        guild_ready_timeout=0.01,
    )

    assert status == 2
    assert fake_discord.requests == [] and fake_discord.connections == 0
    assert "DIGEST_TZ: 'Mars/Olympus' is not a known IANA time zone" in caplog.text


def test_run_with_a_bad_digest_cron_exits_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "fake-bot-token")
    monkeypatch.setenv("DIGEST_CRON", "0 25 * * mon")
    db = tmp_path / "never-created.duckdb"

    status = main(["--db", str(db), "run"])

    assert status == 2
    assert "DIGEST_CRON: '0 25 * * mon' is not a valid 5-field crontab" in capsys.readouterr().err
    assert not db.exists()  # stopped before anything was opened


# ---- computewatch digest --post ----------------------------------------------------------------


@pytest.fixture
def fake_in_thread() -> Iterator[FakeDiscord]:
    """The fake Discord on its own event loop in a thread, so that the CLI (which runs its own
    loop with asyncio.run) can be called as a user would call it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-discord", daemon=True)
    thread.start()
    server = FakeDiscord(
        channels=[FakeChannel(DIGEST_CHANNEL_ID, "digest"), FakeChannel(CHANNEL_ID, "general")]
    )

    def call(make: Callable[[], object]) -> None:
        asyncio.run_coroutine_threadsafe(make(), loop).result(10)  # type: ignore[arg-type]

    call(server.start)
    server.patch_discord()
    try:
        yield server
    finally:
        call(server.stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_digest_post_posts_through_discord_once_per_channel(
    tmp_path: Path,
    fake_in_thread: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    week = last_complete_week(datetime.now(UTC))
    db = tmp_path / "computewatch.duckdb"
    start, _ = week_bounds(week)
    with EventStore(db, clock=ManualClock(start + timedelta(days=2))) as store:
        store.append([make_deal_reported("oa-1", lab="openai", capacity_mw=1_000)])
    monkeypatch.setenv("DISCORD_TOKEN", "fake-bot-token")
    monkeypatch.setenv("DIGEST_CHANNEL_ID", f"{DIGEST_CHANNEL_ID},{CHANNEL_ID}")
    monkeypatch.setenv("COMPUTEWATCH_SEED", "false")

    first = main(["--db", str(db), "digest", "--post"])
    first_err = capsys.readouterr().err
    again = main(["--db", str(db), "digest", "--post"])
    again_err = capsys.readouterr().err

    assert (first, again) == (0, 0)
    for channel in (DIGEST_CHANNEL_ID, CHANNEL_ID):
        [message] = fake_in_thread.messages[channel]
        assert message.embeds[0]["title"].startswith(f"Weekly digest {week}")
        assert message.attachments[0].data.startswith(PNG_MAGIC)
        assert f"channel {channel}: posted (message {message.id})" in first_err
        assert f"channel {channel}: already posted before: not posted again" in again_err


def test_digest_post_without_a_channel_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "fake-bot-token")
    monkeypatch.delenv("DIGEST_CHANNEL_ID", raising=False)

    status = main(["--db", str(tmp_path / "x.duckdb"), "digest", "--post"])

    assert status == 2
    assert "digest --post needs DIGEST_CHANNEL_ID" in capsys.readouterr().err
