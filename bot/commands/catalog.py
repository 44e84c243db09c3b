"""The catalog of commands: every command of every group, and /help over them."""

from __future__ import annotations

from bot.answers import Answer, Table
from bot.commands import alerts, deals, positions, review
from bot.commands.registry import Command, CommandContext, CommandRegistry, Option
from bot.digest import digest_command


def build_registry() -> CommandRegistry:
    registry = CommandRegistry()
    for command in (*positions.COMMANDS, *deals.COMMANDS, *review.COMMANDS, *alerts.COMMANDS):
        registry.add(command)

    def help_(ctx: CommandContext, command: str | None = None) -> Answer:
        if command:
            cmd = registry.get(command)
            rows = [
                [
                    o.name,
                    o.kind + (" (required)" if o.required else ""),
                    o.description + (f" [{', '.join(o.choices)}]" if o.choices else ""),
                ]
                for o in cmd.options
            ]
            return Answer(
                command="help",
                title=f"/{cmd.name}",
                summary=cmd.description,
                table=Table(columns=["option", "type", "meaning"], rows=rows),
                notes=[f"Example: {e}" for e in cmd.examples],
                data={"command": cmd.name, "options": [o.name for o in cmd.options]},
            )
        rows = [[f"/{c.name}", c.description] for c in registry]
        return Answer(
            command="help",
            title="computewatch commands",
            summary="Options go by position or as name:value, e.g. "
            "/position anthropic as_of:2025-12-31. Dates are YYYY-MM-DD.",
            table=Table(columns=["command", "what it does"], rows=rows),
            notes=["/help <command> shows a command's options."],
            data={"commands": [c.name for c in registry]},
        )

    registry.add(
        Command(
            "digest",
            "The weekly digest of an ISO week (default: the last complete week)",
            (Option("week", "ISO week, e.g. 2026-W05", "text"),),
            digest_command,
            examples=("/digest", "/digest 2026-W05"),
            slow=True,
        )
    )
    registry.add(
        Command(
            "help",
            "What computewatch can answer, and how to ask",
            (Option("command", "a command to explain", "text"),),
            help_,
        )
    )
    return registry
