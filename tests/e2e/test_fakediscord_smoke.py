"""The fake Discord carries a real discord.py bot through every flow the project relies on."""

import base64
import io
from collections.abc import AsyncIterator

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakediscord import CallbackType, FakeDiscord, FakeDiscordError, running

# A valid 1x1 PNG, so attachments are real image bytes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
LABS = ["acme-ai", "acme-robotics", "zenith-labs"]


class ConfirmView(discord.ui.View):
    """A yes button that only the invoking user may press."""

    def __init__(self, owner_id: int) -> None:
        super().__init__(timeout=30)
        self.owner_id = owner_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.owner_id

    @discord.ui.button(label="Yes", custom_id="cw:confirm:yes")
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="Confirmed", view=None)
        self.stop()

    @discord.ui.button(label="Later", custom_id="cw:confirm:later")
    async def later(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content="Postponed", view=None)
        self.stop()


class NoteModal(discord.ui.Modal, title="Add a note"):
    """One text input; the submission is echoed back ephemerally."""

    text: discord.ui.TextInput = discord.ui.TextInput(label="Text", custom_id="cw:note:text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Noted: {self.text.value}", ephemeral=True)


class SmokeBot(commands.Bot):
    """Syncs its commands to the test guild on login and re-identifies without waiting."""

    def __init__(self, guild_id: int) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        # A small guild_ready_timeout: on_ready otherwise waits 2 s after the last GUILD_CREATE.
        super().__init__(
            command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.01
        )
        self.guild = discord.Object(guild_id)

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every non-initial IDENTIFY (Discord's identify rate
        # limit); the fake has no such limit.
        return None


def make_smoke_bot(guild_id: int) -> SmokeBot:
    """A tiny bot with one command per interaction flow."""
    bot = SmokeBot(guild_id)
    guild = bot.guild

    @bot.tree.command(guild=guild)
    async def ping(interaction: discord.Interaction) -> None:
        """Reply with an embed."""
        await interaction.response.send_message(embed=discord.Embed(title="pong"))

    @bot.tree.command(guild=guild)
    async def chart(interaction: discord.Interaction) -> None:
        """Defer, then send a PNG as a follow-up."""
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("chart", file=discord.File(io.BytesIO(PNG), "chart.png"))

    @bot.tree.command(guild=guild)
    async def confirm(interaction: discord.Interaction) -> None:
        """Ask for confirmation with a button."""
        await interaction.response.send_message("Sure?", view=ConfirmView(interaction.user.id))

    @bot.tree.command(guild=guild)
    async def note(interaction: discord.Interaction) -> None:
        """Open a modal."""
        await interaction.response.send_modal(NoteModal())

    @bot.tree.command(guild=guild)
    @app_commands.describe(lab="The lab to show")
    async def lab(interaction: discord.Interaction, lab: str) -> None:
        """Show a lab, with autocomplete."""
        await interaction.response.send_message(lab)

    @lab.autocomplete("lab")
    async def lab_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=n, value=n) for n in LABS if current in n]

    admin = app_commands.Group(name="admin", description="Manager commands", guild_ids=[guild_id])

    @admin.command()
    @app_commands.checks.has_permissions(manage_guild=True)
    async def purge(interaction: discord.Interaction, days: int) -> None:
        """Purge old items (managers only)."""
        await interaction.response.send_message(f"purged {days} days", ephemeral=True)

    @purge.error
    async def purge_error(
        interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await interaction.response.send_message("managers only", ephemeral=True)

    bot.tree.add_command(admin)

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if bot.user in message.mentions:
            await message.channel.send("hello", file=discord.File(io.BytesIO(PNG), "hi.png"))

    return bot


@pytest.fixture
async def bot(fake_discord: FakeDiscord) -> AsyncIterator[commands.Bot]:
    async with running(make_smoke_bot(fake_discord.guild_id)) as client:
        yield client


async def test_login_syncs_commands_to_the_guild(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    synced = {c["name"] for c in fake_discord.guild_commands[fake_discord.guild_id]}

    assert synced == {"ping", "chart", "confirm", "note", "lab", "admin"}
    assert fake_discord.global_commands == []
    assert len(fake_discord.identifies) == 1
    assert bot.application_id == fake_discord.application_id


async def test_slash_command_replies_with_an_embed(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    record = await fake_discord.invoke_command("ping")

    reply = await record.wait_reply()
    assert record.callback is not None
    assert record.callback.type == CallbackType.CHANNEL_MESSAGE
    assert reply.embeds[0]["title"] == "pong"


async def test_deferred_command_sends_follow_up_with_png(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    record = await fake_discord.invoke_command("chart")

    followups = await record.wait_followups(1)
    assert record.callbacks[0].type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert followups[0].content == "chart"
    assert followups[0].attachments[0].filename == "chart.png"
    assert followups[0].attachments[0].data == PNG


async def test_button_click_edits_the_message(fake_discord: FakeDiscord, bot: commands.Bot) -> None:
    record = await fake_discord.invoke_command("confirm")
    await record.wait_reply()

    click = await fake_discord.click(record, "cw:confirm:yes")

    assert (await click.wait_response()).type == CallbackType.UPDATE_MESSAGE
    assert record.replies[0].content == "Confirmed"
    assert record.replies[0].components == []


async def test_deferred_button_click_edits_the_original_message(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    record = await fake_discord.invoke_command("confirm")
    await record.wait_reply()

    click = await fake_discord.click(record, "cw:confirm:later")

    assert (await click.wait_response()).type == CallbackType.DEFERRED_UPDATE_MESSAGE
    await fake_discord.wait_until(lambda: record.replies[0].content == "Postponed")
    assert record.replies[0].components == []


async def test_modal_submit_reaches_on_submit(fake_discord: FakeDiscord, bot: commands.Bot) -> None:
    record = await fake_discord.invoke_command("note")
    assert (await record.wait_response()).type == CallbackType.MODAL

    submit = await fake_discord.submit_modal(record, {"Text": "watch acme-ai"})

    reply = await submit.wait_reply()
    assert reply.content == "Noted: watch acme-ai"
    assert reply.ephemeral


async def test_autocomplete_returns_matching_choices(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    choices = await fake_discord.autocomplete("lab", {"lab": "acme"}, focused="lab")

    assert [c["value"] for c in choices] == ["acme-ai", "acme-robotics"]


async def test_subcommand_runs_for_a_manager_only(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    manager = [fake_discord.role_id("manager")]

    allowed = await fake_discord.invoke_command(
        "admin", {"days": 7}, subcommand="purge", roles=manager
    )
    denied = await fake_discord.invoke_command("admin", {"days": 7}, subcommand="purge")

    assert (await allowed.wait_reply()).content == "purged 7 days"
    assert (await denied.wait_reply()).content == "managers only"


async def test_rate_limited_post_is_retried(fake_discord: FakeDiscord, bot: commands.Bot) -> None:
    channel_id = fake_discord.channel_id("general")
    fake_discord.rate_limit("POST", "/channels/{channel_id}/messages", times=2)
    channel = bot.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)

    sent = await channel.send("digest", file=discord.File(io.BytesIO(PNG), "digest.png"))

    [posted] = fake_discord.messages[channel_id]
    assert posted.id == sent.id
    assert posted.attachments[0].data == PNG
    assert len(fake_discord.rate_limited) == 2


async def test_reconnect_resumes_and_commands_still_work(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    assert await fake_discord.reconnect() == "RESUME"
    assert await fake_discord.reconnect(close_code=4000) == "RESUME"

    record = await fake_discord.invoke_command("ping")

    assert (await record.wait_reply()).embeds[0]["title"] == "pong"
    assert len(fake_discord.identifies) == 1


async def test_invalid_session_makes_the_bot_identify_again(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    await fake_discord.invalidate_session(resumable=False)

    assert len(fake_discord.identifies) == 2


async def test_mention_gets_a_channel_post_with_attachment(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    channel_id = fake_discord.channel_id("general")

    await fake_discord.send_user_message(channel_id, "hi there")

    posted = await fake_discord.wait_for_message(channel_id)
    assert posted.content == "hello"
    assert posted.attachments[0].filename == "hi.png"


async def test_heartbeats_arrive_on_time(fake_discord: FakeDiscord) -> None:
    fake_discord.heartbeat_interval = 0.05

    async with running(make_smoke_bot(fake_discord.guild_id)):
        await fake_discord.wait_until(lambda: len(fake_discord.heartbeats) >= 5)

    assert 0 < fake_discord.max_heartbeat_gap() < 3 * fake_discord.heartbeat_interval


async def test_unsynced_command_cannot_be_invoked(
    fake_discord: FakeDiscord, bot: commands.Bot
) -> None:
    with pytest.raises(FakeDiscordError, match="never synced"):
        await fake_discord.invoke_command("missing")
