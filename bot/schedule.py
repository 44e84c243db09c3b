"""The weekly digest on a cron schedule: validate the settings, post once per week and channel.

Once per (channel, week) holds across restarts, retries and catch-up because a post is claimed
in the log before it is made (DigestClaimed, idempotency key `digest-claim:<channel>:<week>`,
expected_version from the stream) and recorded after (DigestPosted, key
`digest:<channel>:<week>`). Claiming first, rather than relying on DigestPosted's key alone,
closes the window between "checked: not posted" and "recorded as posted" in which a second
runner would post too; the price is at-most-once: a runner that dies (or whose post fails)
between claim and post leaves the week unposted for that channel, which is logged. For a weekly
digest a missing post is the lesser harm than a duplicate one.

APScheduler's memory job store forgets missed runs when the process stops, so a digest missed
while the bot was down is caught up by `catch_up` at start (within a day); misfire_grace_time
and coalesce cover a run the running process itself was too late for (sleep, a busy loop).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from bot.answers import Answer
from bot.digest import build_digest, digest_answer, digest_chart_png, last_complete_week
from bot.errors import UserInputError
from bot.settings import Settings
from events.envelope import NewEvent
from events.parties import PartyRegistry
from events.payloads import DigestClaimed, DigestPosted
from store.clock import Clock
from store.errors import ConcurrencyError, IdempotencyKeyReuseError
from store.facade import AsyncEventStore
from store.queries import Queries

log = logging.getLogger(__name__)

JOB_ID = "weekly-digest"
MISFIRE_GRACE_S = 86_400
CATCH_UP_WINDOW = timedelta(hours=24)
CHANNEL_PATTERN_HELP = "Discord channel ids (digits), comma-separated"


class ScheduleSettingsError(UserInputError):
    """Raised when DIGEST_CRON, DIGEST_TZ or DIGEST_CHANNEL_ID cannot be used; names the setting."""


class Poster(Protocol):
    """Where digests go (the Discord client, the REST API, a test's recorder)."""

    async def post(self, channel_id: str, answer: Answer, png: bytes | None) -> str:
        """Post the answer (with the PNG when given); returns the message id (digits)."""
        ...


@dataclass(frozen=True)
class DigestSchedule:
    """The validated digest settings: when (trigger in a named zone) and where (channels)."""

    trigger: CronTrigger
    timezone: ZoneInfo
    channels: tuple[str, ...]


@dataclass(frozen=True)
class PostOutcome:
    channel_id: str
    week: str
    status: str  # "posted", "already_posted", "claimed_elsewhere", "failed"
    message_id: str | None = None


def validate_schedule(settings: Settings) -> DigestSchedule:
    """Check the digest settings at startup; a ScheduleSettingsError names the bad setting."""
    try:
        tz = ZoneInfo(settings.digest_tz.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleSettingsError(
            f"DIGEST_TZ: {settings.digest_tz!r} is not a known IANA time zone "
            "(e.g. UTC, Europe/Berlin, America/New_York)"
        ) from exc
    try:
        trigger = CronTrigger.from_crontab(settings.digest_cron, timezone=tz)
    except ValueError as exc:
        raise ScheduleSettingsError(
            f"DIGEST_CRON: {settings.digest_cron!r} is not a valid 5-field crontab "
            f"(minute hour day month weekday, e.g. '0 9 * * mon'): {exc}"
        ) from exc
    return DigestSchedule(trigger=trigger, timezone=tz, channels=digest_channels(settings))


def digest_channels(settings: Settings) -> tuple[str, ...]:
    raw = settings.digest_channel_id or ""
    channels = tuple(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))
    bad = [c for c in channels if not c.isdigit() or len(c) > 25]
    if bad:
        raise ScheduleSettingsError(
            f"DIGEST_CHANNEL_ID: {', '.join(map(repr, bad))} is not a channel id; "
            f"use {CHANNEL_PATTERN_HELP}"
        )
    return channels


def last_fire_time(trigger: CronTrigger, now: datetime, window: timedelta) -> datetime | None:
    """The latest scheduled fire time in (now - window, now], or None."""
    last = None
    fire = trigger.get_next_fire_time(None, now - window)
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return last


# -- the job ----------------------------------------------------------------------------------
async def post_digest_once(
    store: AsyncEventStore,
    poster: Poster,
    channel_id: str,
    week: str,
    answer: Answer,
    png: bytes | None,
    *,
    now: datetime,
) -> PostOutcome:
    """Post a week's digest to one channel unless it was posted (or claimed) before."""
    stream = f"digest:{channel_id}"
    history = await store.read(store.store.read_stream, stream)
    if any(isinstance(e.payload, DigestPosted) and e.payload.week == week for e in history):
        return PostOutcome(channel_id, week, "already_posted")
    if any(isinstance(e.payload, DigestClaimed) and e.payload.week == week for e in history):
        log.warning(
            "digest %s to channel %s was claimed but never recorded as posted; "
            "not posting again (at most once)",
            week,
            channel_id,
        )
        return PostOutcome(channel_id, week, "claimed_elsewhere")
    claim = NewEvent(
        stream_id=stream,
        occurred_at=now,
        actor="system",
        payload=DigestClaimed(channel_id=channel_id, week=week, claimant=uuid.uuid4().hex),
        idempotency_key=f"digest-claim:{channel_id}:{week}",
        expected_version=len(history),
    )
    try:
        result = await store.append([claim])
    except (ConcurrencyError, IdempotencyKeyReuseError):
        return PostOutcome(channel_id, week, "claimed_elsewhere")
    if result.all_duplicates:
        return PostOutcome(channel_id, week, "claimed_elsewhere")
    try:
        message_id = await poster.post(channel_id, answer, png)
    except Exception:  # noqa: BLE001 - the job's boundary: log it, the other channels go on
        log.exception(
            "digest %s to channel %s failed after claiming; not retried", week, channel_id
        )
        return PostOutcome(channel_id, week, "failed")
    posted = NewEvent(
        stream_id=stream,
        occurred_at=now,
        actor="system",
        payload=DigestPosted(channel_id=channel_id, week=week, message_id=message_id),
        idempotency_key=f"digest:{channel_id}:{week}",
        expected_version=len(history) + 1,
    )
    await store.append([posted])
    return PostOutcome(channel_id, week, "posted", message_id)


async def run_digest_job(
    store: AsyncEventStore,
    poster: Poster,
    channels: tuple[str, ...],
    clock: Clock,
    registry: PartyRegistry | None = None,
    *,
    week: str | None = None,
) -> list[PostOutcome]:
    """The scheduled job: the last complete week's digest to every channel, each at most once."""
    now = clock.now()
    chosen = week or last_complete_week(now)
    if not channels:
        return []  # nothing to post to: do not spend seconds drawing a chart for nobody
    try:
        queries = Queries(store.store)
        digest = await store.read(build_digest, queries, chosen, registry)
        answer = digest_answer(digest, registry)
        png = await store.read(digest_chart_png, queries, digest)
    except Exception:  # noqa: BLE001 - a job logs its name and input and carries on
        log.exception("digest job for %s failed while building the digest", chosen)
        return []
    outcomes = []
    for channel in channels:
        try:
            outcomes.append(
                await post_digest_once(store, poster, channel, chosen, answer, png, now=now)
            )
        except Exception:  # noqa: BLE001
            log.exception("digest job for %s failed for channel %s", chosen, channel)
            outcomes.append(PostOutcome(channel, chosen, "failed"))
    for outcome in outcomes:
        log.info("digest %s -> %s: %s", outcome.week, outcome.channel_id, outcome.status)
    return outcomes


async def catch_up(
    store: AsyncEventStore,
    poster: Poster,
    schedule: DigestSchedule,
    clock: Clock,
    registry: PartyRegistry | None = None,
) -> list[PostOutcome]:
    """At start: if a scheduled run fell in the last 24 h, post its week where it is missing."""
    now = clock.now()
    fired = last_fire_time(schedule.trigger, now, CATCH_UP_WINDOW)
    if fired is None:
        return []
    return await run_digest_job(
        store, poster, schedule.channels, clock, registry, week=last_complete_week(fired)
    )


class RunningJobs:
    """The job runs in flight, so that a shutdown lets them finish: APScheduler's asyncio
    executor cancels running jobs on shutdown, and a digest cancelled between its claim and its
    post would be lost for the week."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[object]] = set()

    def wrap(self, fn: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
        async def tracked() -> object:
            task = asyncio.current_task()
            if task is not None:
                self.tasks.add(task)
            try:
                return await fn()
            finally:
                self.tasks.discard(task)  # type: ignore[arg-type]

        tracked.__name__ = tracked.__qualname__ = getattr(fn, "__name__", "job")
        return tracked

    async def drain(self, within_s: float) -> None:
        """Wait until the runs in flight are done (at most `within_s` seconds)."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=within_s)


async def stop_scheduler(
    scheduler: AsyncIOScheduler, jobs: RunningJobs | None = None, *, within_s: float = 30
) -> None:
    """Start no new run, let the running ones finish (up to `within_s`), then shut down."""
    if not scheduler.running:
        return
    scheduler.pause()
    if jobs is not None:
        await jobs.drain(within_s)
    scheduler.shutdown(wait=False)


def build_scheduler(
    schedule: DigestSchedule,
    job: Callable[[], object],
    *,
    scheduler: AsyncIOScheduler | None = None,
) -> AsyncIOScheduler:
    """An AsyncIOScheduler (not started) with the digest job on the validated cron trigger."""
    if scheduler is None:
        scheduler = AsyncIOScheduler(timezone=schedule.timezone)
    scheduler.add_job(
        job,
        trigger=schedule.trigger,
        id=JOB_ID,
        name="weekly digest",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_S,
        replace_existing=True,
    )
    return scheduler


async def start_digest_schedule(
    settings: Settings,
    store: AsyncEventStore,
    poster: Poster,
    clock: Clock,
    registry: PartyRegistry | None = None,
    *,
    scheduler: AsyncIOScheduler | None = None,
    jobs: RunningJobs | None = None,
) -> AsyncIOScheduler:
    """Validate the settings (fail startup on a bad one), catch up a missed run, start the cron.

    For the composition root: call it inside the running event loop, after the store's writer
    started and the poster can post; stop the returned scheduler on exit (`stop_scheduler`
    with the same `jobs`, so that a digest being posted is not cut off). A `scheduler` given
    (with other jobs on it) gets the digest job and is started if it is not running.
    """
    schedule = validate_schedule(settings)
    if not schedule.channels:
        log.warning("DIGEST_CHANNEL_ID is not set: the weekly digest is not scheduled")
    await catch_up(store, poster, schedule, clock, registry)

    async def weekly_digest() -> None:
        await run_digest_job(store, poster, schedule.channels, clock, registry)

    job = jobs.wrap(weekly_digest) if jobs is not None else weekly_digest
    scheduler = build_scheduler(schedule, job, scheduler=scheduler)
    if not scheduler.running:
        scheduler.start()
    return scheduler
