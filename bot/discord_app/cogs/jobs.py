"""Background jobs of the Discord bot: the weekly digest (cron) and the alert checks (interval).

They start once the bot is ready, so that a digest missed while the bot was down is posted on
start, and stop before the bot disconnects (commands.Bot.close removes the cogs first), letting
a post in flight finish.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from discord.ext import commands

from bot.alerts import AlertEvaluator
from bot.discord_app.poster import ChannelPoster
from bot.schedule import RunningJobs, start_digest_schedule, stop_scheduler, validate_schedule

if TYPE_CHECKING:
    from bot.discord_app.client import ComputewatchBot

log = logging.getLogger(__name__)

ALERT_JOB_ID = "alerts"
STOP_TIMEOUT_S = 30.0


class JobsCog(commands.Cog, name="Jobs"):
    """The digest schedule and the alert evaluator (no commands)."""

    def __init__(self, bot: ComputewatchBot) -> None:
        self.bot = bot
        # Raises ScheduleSettingsError naming DIGEST_CRON or DIGEST_TZ: in setup_hook, that is
        # before the gateway connects.
        self.schedule = validate_schedule(bot.settings)
        self.jobs = RunningJobs()
        self.scheduler: AsyncIOScheduler | None = None
        self.evaluator: AlertEvaluator | None = None
        self._starting: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self._starting = asyncio.create_task(self._start(), name="computewatch-jobs-start")

    async def _start(self) -> None:
        await self.bot.wait_until_ready()
        settings = self.bot.settings
        ctx = self.bot.services.context
        poster = ChannelPoster(self.bot)
        self.evaluator = AlertEvaluator(
            self.bot.store,
            poster,
            ctx.registry,
            ctx.clock,
            cooldown=timedelta(minutes=settings.alert_cooldown_min),
        )
        scheduler = AsyncIOScheduler(timezone=self.schedule.timezone)
        scheduler.add_job(
            self.jobs.wrap(self.evaluator.run_once),
            trigger=IntervalTrigger(
                seconds=settings.alert_interval_s, timezone=self.schedule.timezone
            ),
            id=ALERT_JOB_ID,
            name="alerts",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(int(settings.alert_interval_s), 1),
            next_run_time=datetime.now(self.schedule.timezone),
        )
        try:
            self.scheduler = await start_digest_schedule(
                settings,
                self.bot.store,
                poster,
                ctx.clock,
                ctx.registry,
                scheduler=scheduler,
                jobs=self.jobs,
            )
        except Exception:  # noqa: BLE001 - the bot keeps answering commands without its jobs
            log.exception("the digest schedule and alerts could not start")

    async def cog_unload(self) -> None:
        starting = self._starting
        if starting is not None and not starting.done():
            if self.bot.is_ready():
                # A catch-up digest may be posting: let it finish rather than cut it off.
                await asyncio.wait({starting}, timeout=STOP_TIMEOUT_S)
            starting.cancel()
        if self.scheduler is not None:
            await stop_scheduler(self.scheduler, self.jobs, within_s=STOP_TIMEOUT_S)
            self.scheduler = None
