"""/alert list in every surface; adding and removing alerts happens in Discord (bot/alerts.py)."""

from __future__ import annotations

from bot.alerts import ALERT_METRICS, alerts_answer, parse_lab_or_any
from bot.answers import Answer
from bot.commands.options import parse_choice
from bot.commands.registry import Command, CommandContext, Option
from bot.errors import UserInputError

ACTIONS = ("list", "add", "remove")


def alert_command(
    ctx: CommandContext,
    action: str = "list",
    lab: str | None = None,
    metric: str | None = None,
    threshold: str | None = None,
) -> Answer:
    """/alert list [lab] [metric]: the alerts in force, with the figure each watches now."""
    if action != "list":
        raise UserInputError(
            f"/alert {action} works in Discord, where the alert's channel and your analyst "
            "role are known; here /alert list shows the alerts."
        )
    slug = parse_lab_or_any(ctx.registry, lab) if lab else None
    chosen = parse_choice(metric, ALERT_METRICS, option="metric") if metric else None
    return alerts_answer(ctx.queries, ctx.registry, lab=slug, metric=chosen)


COMMANDS = (
    Command(
        "alert",
        "Alerts in force (/alert list); analysts add and remove them in Discord",
        (
            Option(
                "action",
                "list (add and remove: in Discord)",
                "choice",
                choices=ACTIONS,
                default="list",
            ),
            Option("lab", "only the alerts of this lab", "text"),
            Option("metric", "only the alerts on this metric", "text"),
            Option("threshold", "used by /alert add in Discord", "text"),
        ),
        alert_command,
        examples=("/alert list", "/alert list anthropic"),
        # AlertsCog (bot/discord_app/cogs/alerts.py) defines /alert add|list|remove in Discord.
        slash=False,
    ),
)
