"""Posting answers to channels by id (digests, alerts), with or without a gateway connection."""

from __future__ import annotations

import io
import logging

import discord

from bot.answers import Answer
from bot.discord_app.embeds import render_answer
from bot.errors import UserInputError
from bot.schedule import PostOutcome, run_digest_job, validate_schedule
from bot.services import Services
from bot.settings import Settings
from store.facade import AsyncEventStore

log = logging.getLogger(__name__)

CHART_NAME = "chart.png"  # the embed's image is attachment://chart.png (embeds.CHART_URL)


class ChannelPoster:
    """A bot.schedule.Poster over discord.py's REST client: the client must be logged in; it
    need not be connected to the gateway (a partial channel sends by id alone)."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def post(self, channel_id: str, answer: Answer, png: bytes | None) -> str:
        channel = self.client.get_partial_messageable(int(channel_id))
        rendered = render_answer(answer, chart=png is not None)
        if png is None:
            message = await channel.send(embeds=rendered.embeds)
        else:
            file = discord.File(io.BytesIO(png), filename=CHART_NAME)
            message = await channel.send(embeds=rendered.embeds, file=file)
        return str(message.id)


async def post_digest_rest(
    settings: Settings, services: Services, week: str | None = None
) -> list[PostOutcome]:
    """`computewatch digest --post`: the digest to DIGEST_CHANNEL_ID through Discord's REST API,
    each channel at most once per week (the same claim as the running bot's, so they never
    both post)."""
    schedule = validate_schedule(settings)
    if settings.discord_token is None:
        raise UserInputError("digest --post needs DISCORD_TOKEN")
    if not schedule.channels:
        raise UserInputError("digest --post needs DIGEST_CHANNEL_ID (the channel ids to post to)")
    client = discord.Client(intents=discord.Intents.none())
    try:
        try:
            await client.login(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            raise UserInputError(
                "DISCORD_TOKEN was refused by Discord; nothing was posted"
            ) from None
        async with AsyncEventStore(services.store) as writer:
            return await run_digest_job(
                writer,
                ChannelPoster(client),
                schedule.channels,
                services.context.clock,
                services.context.registry,
                week=week,
            )
    finally:
        await client.close()
