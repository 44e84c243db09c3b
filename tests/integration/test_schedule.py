"""The digest schedule with a controlled clock: local fire times, once per week and channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.answers import Answer
from bot.schedule import (
    JOB_ID,
    MISFIRE_GRACE_S,
    ScheduleSettingsError,
    catch_up,
    run_digest_job,
    start_digest_schedule,
    validate_schedule,
)
from bot.settings import Settings
from events.payloads import DigestPosted
from store.clock import ManualClock
from store.facade import AsyncEventStore
from store.log import EventStore
from tests.factories import make_deal_reported

BERLIN = ZoneInfo("Europe/Berlin")
CHANNELS = ("1100000000000000011", "1100000000000000012")
# Monday 2026-03-30 09:00 in Berlin is 07:00 UTC (summer time began Sunday 2026-03-29).
MON_MAR_30_0900_BERLIN = datetime(2026, 3, 30, 9, tzinfo=BERLIN)


class RecordingDiscord:
    """Stands in for Discord (the outside world): keeps what was posted, returns message ids."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Answer, bytes | None]] = []

    async def post(self, channel_id: str, answer: Answer, png: bytes | None) -> str:
        await asyncio.sleep(0)  # a real post yields to the loop; let racing jobs interleave
        self.posts.append((channel_id, answer, png))
        return str(1_200_000_000_000_000_000 + len(self.posts))


def settings(**values: str) -> Settings:
    base = {
        "digest_cron": "0 9 * * mon",
        "digest_tz": "Europe/Berlin",
        "digest_channel_id": ",".join(CHANNELS),
    }
    return Settings(**{**base, **values})  # type: ignore[arg-type]


@pytest.fixture
def berlin_clock() -> ManualClock:
    return ManualClock(MON_MAR_30_0900_BERLIN)


@pytest.fixture
async def writer(db_path: Path, berlin_clock: ManualClock) -> AsyncIterator[AsyncEventStore]:
    with EventStore(db_path, clock=berlin_clock) as store:
        berlin_clock.set(datetime(2026, 3, 25, tzinfo=UTC))
        store.append(
            [
                make_deal_reported(
                    "oa-1",
                    lab="openai",
                    capacity_mw=1_000,
                    occurred_at=datetime(2026, 3, 24, tzinfo=UTC),
                )
            ]
        )
        berlin_clock.set(MON_MAR_30_0900_BERLIN)
        async with AsyncEventStore(store) as facade:
            yield facade


def posted_weeks(store: EventStore, channel: str) -> list[str]:
    return [
        e.payload.week
        for e in store.read_stream(f"digest:{channel}")
        if isinstance(e.payload, DigestPosted)
    ]


def test_trigger_fires_at_nine_berlin_time_across_the_march_dst_change() -> None:
    trigger = validate_schedule(settings()).trigger
    before = datetime(2026, 3, 22, 12, tzinfo=UTC)

    first = trigger.get_next_fire_time(None, before)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))

    assert first.astimezone(UTC) == datetime(2026, 3, 23, 8, tzinfo=UTC)  # CET, UTC+1
    assert second.astimezone(UTC) == datetime(2026, 3, 30, 7, tzinfo=UTC)  # CEST, UTC+2
    assert (first.hour, second.hour) == (9, 9)


def test_a_sunday_trigger_fires_at_local_time_on_the_dst_day_itself() -> None:
    trigger = validate_schedule(settings(digest_cron="0 9 * * sun")).trigger

    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 28, tzinfo=UTC))

    assert fire.astimezone(UTC) == datetime(2026, 3, 29, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"digest_cron": "0 9 * *"}, "DIGEST_CRON"),
        ({"digest_cron": "61 9 * * mon"}, "DIGEST_CRON"),
        ({"digest_tz": "Europe/Atlantis"}, "DIGEST_TZ"),
        ({"digest_tz": "../etc/passwd"}, "DIGEST_TZ"),
        ({"digest_channel_id": "123,general"}, "DIGEST_CHANNEL_ID"),
    ],
)
def test_bad_schedule_settings_are_rejected_naming_the_setting(
    values: dict[str, str], setting: str
) -> None:
    with pytest.raises(ScheduleSettingsError, match=setting):
        validate_schedule(settings(**values))


async def test_the_job_posts_once_to_each_of_two_channels(
    writer: AsyncEventStore, berlin_clock: ManualClock
) -> None:
    discord = RecordingDiscord()

    outcomes = await run_digest_job(writer, discord, CHANNELS, berlin_clock)

    assert [o.status for o in outcomes] == ["posted", "posted"]
    assert sorted(c for c, _, _ in discord.posts) == sorted(CHANNELS)
    assert all(a.data["week"] == "2026-W13" and png for _, a, png in discord.posts)
    assert all(posted_weeks(writer.store, c) == ["2026-W13"] for c in CHANNELS)


async def test_a_restart_right_after_posting_does_not_post_again(
    db_path: Path, writer: AsyncEventStore, berlin_clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    await run_digest_job(writer, discord, CHANNELS, berlin_clock)
    await writer.aclose()
    writer.store.close()
    berlin_clock.advance(timedelta(minutes=1))

    with EventStore(db_path, clock=berlin_clock) as reopened:
        async with AsyncEventStore(reopened) as restarted:
            outcomes = await catch_up(
                restarted, discord, validate_schedule(settings()), berlin_clock
            )
            again = await run_digest_job(restarted, discord, CHANNELS, berlin_clock)

    assert [o.status for o in outcomes + again] == ["already_posted"] * 4
    assert len(discord.posts) == 2


async def test_two_jobs_racing_post_once_per_channel(
    writer: AsyncEventStore, berlin_clock: ManualClock
) -> None:
    discord = RecordingDiscord()

    await asyncio.gather(
        run_digest_job(writer, discord, CHANNELS, berlin_clock),
        run_digest_job(writer, discord, CHANNELS, berlin_clock),
    )

    assert sorted(c for c, _, _ in discord.posts) == sorted(CHANNELS)


async def test_a_bot_down_at_the_scheduled_time_posts_once_when_it_starts(
    writer: AsyncEventStore, berlin_clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    schedule = validate_schedule(settings())
    berlin_clock.set(MON_MAR_30_0900_BERLIN + timedelta(hours=5))

    first = await catch_up(writer, discord, schedule, berlin_clock)
    second = await catch_up(writer, discord, schedule, berlin_clock)
    scheduled = await run_digest_job(writer, discord, CHANNELS, berlin_clock)  # the late cron run

    assert [o.status for o in first] == ["posted", "posted"]
    assert [o.status for o in second + scheduled] == ["already_posted"] * 4
    assert len(discord.posts) == 2


async def test_a_bot_down_for_more_than_a_day_does_not_catch_up(
    writer: AsyncEventStore, berlin_clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    berlin_clock.set(MON_MAR_30_0900_BERLIN + timedelta(hours=25))

    outcomes = await catch_up(writer, discord, validate_schedule(settings()), berlin_clock)

    assert outcomes == [] and discord.posts == []


async def test_the_scheduler_runs_the_digest_job_with_coalesce_and_grace(
    writer: AsyncEventStore, berlin_clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    berlin_clock.set(MON_MAR_30_0900_BERLIN - timedelta(days=2))  # nothing to catch up
    scheduler = await start_digest_schedule(settings(), writer, discord, berlin_clock)
    try:
        job = scheduler.get_job(JOB_ID)
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (
            True,
            1,
            MISFIRE_GRACE_S,
        )
        assert str(job.trigger.timezone) == "Europe/Berlin"
        assert discord.posts == []
        # Fire the job now, as the cron would at Monday 09:00 (the job reads the manual clock).
        berlin_clock.set(MON_MAR_30_0900_BERLIN)
        job.modify(next_run_time=datetime.now(BERLIN))
        async with asyncio.timeout(10):
            # Wait for the job to finish (both posts recorded), not just for the posts.
            # noqa below: the store offers no event to await; poll it briefly.
            while not all(posted_weeks(writer.store, c) for c in CHANNELS):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        scheduler.shutdown(wait=False)

    assert sorted(c for c, _, _ in discord.posts) == sorted(CHANNELS)
    assert all(a.data["week"] == "2026-W13" for _, a, _ in discord.posts)
