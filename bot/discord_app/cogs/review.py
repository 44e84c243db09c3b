"""Review of feed candidates in Discord: each candidate is posted to REVIEW_CHANNEL_ID with
Accept, Edit and Reject buttons for analysts. The buttons are dynamic items (custom ids
`cw:review:<action>:<candidate>`), so they work on any review message after a restart."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot import review
from bot.discord_app.drafts import (
    actor_of,
    parse_capacity_mw,
    parse_counterparties,
    parse_value_usd,
)
from bot.discord_app.embeds import cut, render_answer
from bot.errors import UserInputError
from bot.feeds import FoundCandidate, party_names
from events.envelope import RecordedEvent
from events.vocabulary import DealStatus

if TYPE_CHECKING:
    from bot.discord_app.client import ComputewatchBot

log = logging.getLogger(__name__)

# The candidate part of a custom id: a feed candidate's is 64 hex digits; Discord allows 100
# characters in all.
CUSTOM_ID = r"cw:review:(?P<action>accept|edit|reject):(?P<key>[A-Za-z0-9._:-]{1,80})"
CUSTOM_ID_RE = re.compile(CUSTOM_ID)
BUTTONS: dict[str, tuple[str, discord.ButtonStyle]] = {
    "accept": ("Accept", discord.ButtonStyle.success),
    "edit": ("Edit", discord.ButtonStyle.primary),
    "reject": ("Reject", discord.ButtonStyle.danger),
}
# A restart after a long outage must not flood the channel; the rest wait for the next post
# (and /review lists them all meanwhile).
MAX_POSTS_PER_RUN = 25
EDIT_TIMEOUT_S = 900.0
STATUSES = tuple(s.value for s in DealStatus)


def custom_id(action: str, stream_id: str) -> str:
    return f"cw:review:{action}:{stream_id.removeprefix('candidate:')}"


def can_have_buttons(stream_id: str) -> bool:
    return CUSTOM_ID_RE.fullmatch(custom_id("accept", stream_id)) is not None


def who(actor: str) -> str:
    """How a decision's actor is shown: a Discord user as a mention, anyone else by name."""
    user = actor.removeprefix("discord:")
    return f"<@{user}>" if user != actor and user.isdigit() else actor


def decision_content(decision: RecordedEvent) -> str:
    """The line a decided review message shows above the candidate."""
    return review.decision_summary(decision, who(decision.actor))


def already_decided(decision: RecordedEvent) -> str:
    return (
        "Already decided: "
        + review.decision_summary(decision, who(decision.actor))
        + ". Nothing was written."
    )


def parse_edits(
    bot: ComputewatchBot,
    *,
    status: str,
    capacity: str,
    value: str,
    counterparties: str,
    deal: str,
) -> dict[str, object]:
    """The corrections of the Edit form as review.accept edits (blank capacity or value clear
    the figure; a blank deal lets matching choose)."""
    wanted = status.strip().lower()
    if wanted not in STATUSES:
        raise UserInputError(
            f"status: {status!r} is not a status; use one of {', '.join(STATUSES)}"
        )
    edits: dict[str, object] = {
        "status": wanted,
        "capacity_mw": parse_capacity_mw(capacity),
        "value_usd": parse_value_usd(value),
        "counterparties": [
            c.model_dump()
            for c in parse_counterparties(counterparties, bot.services.context.registry)
        ],
    }
    if deal.strip():
        edits["deal_id"] = deal.strip().lower().removeprefix("deal:")
    return edits


class ReviewButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=CUSTOM_ID):
    """Accept, Edit or Reject of one candidate; any instance of the bot can answer it."""

    def __init__(self, action: str, stream_id: str) -> None:
        label, style = BUTTONS[action]
        super().__init__(
            discord.ui.Button(label=label, style=style, custom_id=custom_id(action, stream_id))
        )
        self.action = action
        self.stream_id = stream_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ReviewButton:
        return cls(match["action"], "candidate:" + match["key"])

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        from bot.discord_app.client import report_error

        try:
            cog = interaction.client.get_cog("Review")  # type: ignore[attr-defined]
            if not isinstance(cog, ReviewCog):
                raise RuntimeError("the review cog is not loaded")
            await cog.on_click(interaction, self.action, self.stream_id)
        except Exception as exc:  # noqa: BLE001 - a click's one boundary: explained or logged
            await report_error(interaction, exc)


def review_view(stream_id: str) -> discord.ui.View:
    """The three buttons of a review message; no timeout: they live as long as the message."""
    view = discord.ui.View(timeout=None)
    for action in BUTTONS:
        view.add_item(ReviewButton(action, stream_id))
    return view


class EditModal(discord.ui.Modal):
    """Corrections to a candidate before accepting it (Discord allows five inputs)."""

    def __init__(
        self, cog: ReviewCog, record: review.CandidateRecord, message: discord.Message | None
    ) -> None:
        key = record.stream_id.removeprefix("candidate:")
        super().__init__(
            title="Correct the candidate, then accept",
            timeout=EDIT_TIMEOUT_S,
            custom_id=f"cw:review:form:{key}"[:100],
        )
        self.cog = cog
        self.stream_id = record.stream_id
        self.message = message
        deal = record.payload.deal
        self.status: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label="Status",
            default=deal.status.value,
            max_length=20,
            placeholder=", ".join(STATUSES)[:100],
            custom_id="cw:review:form:status",
        )
        self.capacity: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label="Capacity (MW)",
            default=f"{deal.capacity_mw:g}" if deal.capacity_mw is not None else "",
            required=False,
            max_length=40,
            placeholder="1000 or 1.2 GW; blank: not stated",
            custom_id="cw:review:form:capacity",
        )
        self.value: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label="Value (USD)",
            default=f"${deal.value_usd:,.0f}" if deal.value_usd is not None else "",
            required=False,
            max_length=60,
            placeholder="$20 billion; blank: not stated",
            custom_id="cw:review:form:value",
        )
        self.counterparties: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label="Counterparties",
            default=", ".join(f"{c.party}:{c.role.value}" for c in deal.counterparties),
            required=False,
            max_length=400,
            placeholder="google:provider, broadcom:chip_supplier",
            custom_id="cw:review:form:parties",
        )
        self.deal: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label="Attach to deal id (blank: match)",
            required=False,
            max_length=120,
            placeholder="an existing deal id, e.g. from /deals",
            custom_id="cw:review:form:deal",
        )
        for item in (self.status, self.capacity, self.value, self.counterparties, self.deal):
            self.add_item(item)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        cog = self.cog
        cog.bot.require_analyst(interaction)  # roles may change while the form is open
        edits = parse_edits(
            cog.bot,
            status=self.status.value,
            capacity=self.capacity.value,
            value=self.value.value,
            counterparties=self.counterparties.value,
            deal=self.deal.value,
        )
        await interaction.response.defer(ephemeral=True, thinking=True)
        decision = await cog.decide(interaction, self.stream_id, "accept", edits, self.message)
        await interaction.edit_original_response(
            content=f"Accepted with your corrections: {decision}"
        )

    async def on_error(  # type: ignore[override]  # discord.py's Modal drops View's item
        self, interaction: discord.Interaction, error: Exception
    ) -> None:
        from bot.discord_app.client import report_error

        await report_error(interaction, error)


# How long a feed notice made while the bot starts waits for the review cog to be loaded.
NOTICE_WAIT_S = 30.0


class DiscordNotifier:
    """The feed notifier while the bot runs: candidates and notices go to the review channel."""

    def __init__(self, bot: ComputewatchBot) -> None:
        self.bot = bot

    def _cog(self) -> ReviewCog | None:
        cog = self.bot.get_cog("Review")
        return cog if isinstance(cog, ReviewCog) else None

    async def notify(self, text: str) -> None:
        cog = await self._cog_when_loaded()
        if cog is None or not await cog.post_notice(text):
            log.warning("feed notice: %s", text)

    async def _cog_when_loaded(self) -> ReviewCog | None:
        """The review cog; a feed polled as the bot starts may notice something before the
        bot has loaded its cogs: the notice then waits for them a while, not to be lost."""
        deadline = asyncio.get_running_loop().time() + NOTICE_WAIT_S
        while (cog := self._cog()) is None and asyncio.get_running_loop().time() < deadline:
            if self.bot.is_closed():  # shut down meanwhile: nobody will load it
                return None
            await asyncio.sleep(0.1)
        return cog

    async def propose(self, candidates: Sequence[FoundCandidate]) -> None:
        cog = self._cog()
        if cog is None:
            # Not set up yet: the cog posts what is pending when it loads.
            log.info("%d candidates wait for the review cog", len(candidates))
            return
        await cog.post_pending()


class ReviewCog(commands.Cog, name="Review"):
    """Feed candidates posted for review; analysts accept, correct or reject them."""

    def __init__(self, bot: ComputewatchBot) -> None:
        self.bot = bot
        self._post_lock = asyncio.Lock()
        self._backlog: asyncio.Task[int] | None = None

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ReviewButton)
        if self.bot.settings.review_channel_id is None:
            log.warning(
                "REVIEW_CHANNEL_ID is not set: feed candidates are not posted to Discord "
                "(/review lists them)"
            )
            return
        # Candidates recorded while the bot was away (or by `feeds poll --once`) are posted now.
        self._backlog = asyncio.create_task(self._post_backlog(), name="computewatch-review-post")

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ReviewButton)
        if self._backlog is not None and not self._backlog.done():
            self._backlog.cancel()
            await asyncio.gather(self._backlog, return_exceptions=True)

    # -- posting -----------------------------------------------------------------------------
    async def _post_backlog(self) -> int:
        try:
            return await self.post_pending()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a background job's boundary: /review still lists them
            log.exception("could not post the pending candidates for review")
            return 0

    def _channel(self) -> discord.PartialMessageable | None:
        channel_id = self.bot.settings.review_channel_id
        return None if channel_id is None else self.bot.get_partial_messageable(channel_id)

    async def post_notice(self, text: str) -> bool:
        """Post an operator notice to the review channel; False when there is none."""
        channel = self._channel()
        if channel is None:
            return False
        await channel.send(cut(text, 2000))
        return True

    async def post_pending(self) -> int:
        """Post every pending candidate not yet posted (at most MAX_POSTS_PER_RUN); each post is
        remembered with a CandidatePosted event, so a candidate is posted once."""
        channel = self._channel()
        if channel is None:
            return 0
        store = self.bot.services.store
        async with self._post_lock:
            pending = await self.bot.read(review.pending_candidates, store)
            todo = [c for c in pending if c.posted is None and can_have_buttons(c.stream_id)]
            names = party_names()
            for candidate in todo[:MAX_POSTS_PER_RUN]:
                answer = review.candidate_answer(candidate.stream_id, candidate.payload, names)
                try:
                    message = await channel.send(
                        embeds=render_answer(answer).embeds, view=review_view(candidate.stream_id)
                    )
                except discord.HTTPException as exc:
                    log.warning("could not post %s for review: %s", candidate.stream_id, exc)
                    break
                now = self.bot.services.context.clock.now()
                await self.bot.store.append(
                    [review.posted_event(candidate.stream_id, channel.id, message.id, now)]
                )
            if len(todo) > MAX_POSTS_PER_RUN:
                log.warning(
                    "%d more candidates wait to be posted for review",
                    len(todo) - MAX_POSTS_PER_RUN,
                )
            return min(len(todo), MAX_POSTS_PER_RUN)

    # -- decisions ---------------------------------------------------------------------------
    async def on_click(self, interaction: discord.Interaction, action: str, stream_id: str) -> None:
        """A button of a review message: analysts only; a decided candidate stays decided."""
        self.bot.require_analyst(interaction)
        if action != "edit":  # the review message itself shows the decision: acknowledged now,
            await interaction.response.defer()  # before a read that may wait for the writer
        record = await self.bot.read(review.load_candidate, self.bot.services.store, stream_id)
        if record.decision is not None:
            if not interaction.response.is_done():
                await interaction.response.defer()
            await interaction.edit_original_response(
                content=decision_content(record.decision), view=None
            )
            raise review.ReviewError(already_decided(record.decision))
        if action == "edit":  # a form must be the first response: no deferring before it
            await interaction.response.send_modal(EditModal(self, record, interaction.message))
            return
        await self.decide(interaction, stream_id, action, None, None)

    async def decide(
        self,
        interaction: discord.Interaction,
        stream_id: str,
        action: str,
        edits: Mapping[str, object] | None,
        message: discord.Message | None,
    ) -> str:
        """Write the decision as the analyst and show it on the review message (`message`, or
        the message of the clicked button); says what was written."""
        store = self.bot.services.store
        actor = actor_of(interaction.user.id)
        try:
            if action == "accept":
                result = await self.bot.read(review.accept, store, stream_id, actor, edits)
            else:
                result = await self.bot.read(review.reject, store, stream_id, actor, None)
        except review.ReviewError:
            # Decided meanwhile (another analyst, the console): show that decision instead.
            record = await self.bot.read(review.load_candidate, store, stream_id)
            if record.decision is not None:
                await self._show(interaction, message, decision_content(record.decision))
                raise review.ReviewError(already_decided(record.decision)) from None
            raise
        decision = review.decision_of(result)
        await self._show(interaction, message, decision_content(decision))
        if action != "accept":
            log.info("%s rejected %s", actor, stream_id)
            return "rejected; no deal event was written."
        await self.bot.catch_up_index()
        written = [e.type for e in result.events if e.stream_id != stream_id]
        return (
            f"{result.action.replace('_', ' ')} of deal `{result.deal_id}` "
            f"({', '.join(written) or 'no deal event'})."
        )

    async def _show(
        self, interaction: discord.Interaction, message: discord.Message | None, content: str
    ) -> None:
        """Put the decision on the review message and take its buttons away."""
        try:
            if message is not None:
                await message.edit(content=content, view=None)
            else:
                await interaction.edit_original_response(content=content, view=None)
        except discord.HTTPException as exc:
            # The decision is written either way; a stale message is only cosmetic.
            log.warning("could not update the review message of %s: %s", interaction.id, exc)
