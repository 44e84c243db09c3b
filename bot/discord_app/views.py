"""Views: the paginator and the write confirmation; both answer only the user who invoked them."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

import discord

from bot.discord_app.timing import in_time

log = logging.getLogger(__name__)

PAGE_TIMEOUT_S = 300.0
CONFIRM_TIMEOUT_S = 300.0

FetchPage = Callable[[int], Awaitable[list[discord.Embed]]]
Action = Callable[[discord.Interaction], Awaitable[str]]


class OwnedView(discord.ui.View):
    """A view only its owner may use; it disables its buttons when it times out."""

    def __init__(self, owner_id: int, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        # Set by whoever sends the view: how to edit the message that carries it.
        self.message: discord.Message | discord.InteractionMessage | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            f"Only <@{self.owner_id}> can use these buttons; run the command yourself.",
            ephemeral=True,
        )
        return False

    def disable(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True

    async def on_timeout(self) -> None:
        self.disable()
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                # The message may be gone or the token expired (15 min); nothing to disable then.
                log.debug("could not disable the view of message %s", self.message.id)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[OwnedView]
    ) -> None:
        from bot.discord_app.client import report_error

        await report_error(interaction, error)


class PaginatorView(OwnedView):
    """Previous/Next through `pages` pages; fetch(i) gives the embeds of page i (0-based)."""

    def __init__(
        self,
        owner_id: int,
        pages: int,
        fetch: FetchPage,
        *,
        start: int = 0,
        timeout: float = PAGE_TIMEOUT_S,
    ) -> None:
        super().__init__(owner_id, timeout=timeout)
        self.pages = pages
        self.fetch = fetch
        self.index = min(max(start, 0), pages - 1)
        _unique_ids(self)
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.index == 0
        self.next.disabled = self.index >= self.pages - 1
        self.counter.label = f"{self.index + 1}/{self.pages}"

    async def _show(self, interaction: discord.Interaction, index: int) -> None:
        self.index = min(max(index, 0), self.pages - 1)
        self._sync_buttons()
        # A page of a command is read again: under load that may take a while.
        embeds = await in_time(interaction, self.fetch(self.index), update=True)
        if interaction.response.is_done():
            await interaction.edit_original_response(embeds=embeds, view=self, attachments=[])
        else:
            await interaction.response.edit_message(embeds=embeds, view=self, attachments=[])

    @discord.ui.button(
        label="Previous", style=discord.ButtonStyle.secondary, custom_id="cw:page:previous"
    )
    async def previous(
        self, interaction: discord.Interaction, button: discord.ui.Button[PaginatorView]
    ) -> None:
        await self._show(interaction, self.index - 1)

    @discord.ui.button(
        label="1/1", style=discord.ButtonStyle.secondary, disabled=True, custom_id="cw:page:counter"
    )
    async def counter(
        self, interaction: discord.Interaction, button: discord.ui.Button[PaginatorView]
    ) -> None:
        await interaction.response.defer()  # a label, never clickable

    @discord.ui.button(label="Next", style=discord.ButtonStyle.primary, custom_id="cw:page:next")
    async def next(
        self, interaction: discord.Interaction, button: discord.ui.Button[PaginatorView]
    ) -> None:
        await self._show(interaction, self.index + 1)


class ConfirmView(OwnedView):
    """Confirm runs `action` with the click (it writes and says what it wrote); Cancel writes
    nothing."""

    def __init__(
        self, owner_id: int, action: Action, *, timeout: float = CONFIRM_TIMEOUT_S
    ) -> None:
        super().__init__(owner_id, timeout=timeout)
        self.action = action
        self.value: bool | None = None
        _unique_ids(self)

    @discord.ui.button(
        label="Confirm", style=discord.ButtonStyle.success, custom_id="cw:confirm:yes"
    )
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmView]
    ) -> None:
        self.value = True
        self.disable()
        self.stop()
        # The write waits for the writer (a group commit, a snapshot's checkpoint): if it is
        # slow, the click is acknowledged in time and the preview is edited once it is done,
        # instead of Discord failing the click of a write that went through.
        outcome = await in_time(interaction, self.action(interaction), update=True)
        if interaction.response.is_done():
            await interaction.edit_original_response(content=outcome, view=None)
        else:
            await interaction.response.edit_message(content=outcome, view=None)

    @discord.ui.button(
        label="Cancel", style=discord.ButtonStyle.secondary, custom_id="cw:confirm:no"
    )
    async def cancel(
        self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmView]
    ) -> None:
        self.value = False
        self.stop()
        await interaction.response.edit_message(
            content="Cancelled: nothing was written.", view=None
        )

    async def on_timeout(self) -> None:
        self.disable()
        if self.message is not None:
            try:
                await self.message.edit(content="Timed out: nothing was written.", view=self)
            except discord.HTTPException:
                log.debug("could not disable the confirmation of message %s", self.message.id)


def _unique_ids(view: discord.ui.View) -> None:
    """Suffix the custom ids, so that two live views of the same kind never take each
    other's clicks (ids stay prefixed cw:<view>:<button>: for tests and logs)."""
    suffix = secrets.token_hex(4)
    for item in view.children:
        if isinstance(item, discord.ui.Button) and item.custom_id:
            item.custom_id = f"{item.custom_id}:{suffix}"
