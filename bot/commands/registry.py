"""Command definitions (name, typed options, handler) and the parser of command lines."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.answers import Answer
from bot.commands.options import parse_choice, parse_int, parse_moment, parse_party
from bot.errors import UserInputError, shown
from events.parties import PartyRegistry
from store.clock import Clock
from store.queries import Queries

OptionKind = Literal["lab", "labs", "date", "text", "int", "choice", "deal"]

# Values that are written name:value but are not options: `deal:<slug>`, the stream id that /deal
# and /deals print, is a deal id. No option may take one of these names (Command checks).
VALUE_PREFIXES = frozenset({"deal"})


@dataclass(frozen=True)
class CommandContext:
    """What a command may use: the read model, the party registry and the clock."""

    queries: Queries
    registry: PartyRegistry
    clock: Clock


@dataclass(frozen=True)
class Option:
    name: str
    description: str
    kind: OptionKind
    required: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None


@dataclass(frozen=True)
class Command:
    name: str
    description: str
    options: tuple[Option, ...]
    handler: Callable[..., Answer]
    examples: tuple[str, ...] = ()
    # Commands that may take more than a moment (folds of the log, charts): surfaces defer.
    slow: bool = False
    # False when a cog in bot/discord_app defines the slash command itself (e.g. /alert, a
    # group with add/list/remove); QueriesCog then leaves it out.
    slash: bool = True

    def __post_init__(self) -> None:
        if len(self.description) > 100:  # Discord cuts slash command descriptions at 100
            raise ValueError(f"/{self.name}: description longer than 100 characters")
        clashing = [o.name for o in self.options if o.name in VALUE_PREFIXES]
        if clashing:
            raise ValueError(
                f"/{self.name}: option {clashing[0]!r} would be read as a value like "
                f"{clashing[0]}:<id>; name it otherwise"
            )


@dataclass
class CommandRegistry:
    commands: dict[str, Command] = field(default_factory=dict)

    def add(self, command: Command) -> Command:
        self.commands[command.name] = command
        return command

    def get(self, name: str) -> Command:
        name = name.lstrip("/").lower()
        if name in self.commands:
            return self.commands[name]
        close = [c for c in self.commands if c.startswith(name[:3])] if name else []
        hint = f" Did you mean /{close[0]}?" if close else ""
        raise UserInputError(f"There is no command /{shown(name)}.{hint} Try /help.")

    def __iter__(self) -> Iterator[Command]:
        return iter(self.commands.values())


def split_command_line(line: str) -> tuple[str, list[str], dict[str, str]]:
    """'/position anthropic as_of:2025-12-31' -> ('position', ['anthropic'], {'as_of': ...})."""
    try:
        tokens = shlex.split(line.strip())
    except ValueError as exc:
        raise UserInputError(f"Could not read the command: {exc}") from None
    if not tokens:
        raise UserInputError("Type a command, e.g. /position anthropic (or /help).")
    name, positional, named = tokens[0].lstrip("/"), [], {}
    for token in tokens[1:]:
        key, sep, value = token.partition(":")
        if sep and _is_option_name(key, value):
            named[key.lower()] = value
        else:
            positional.append(token)
    return name, positional, named


def _is_option_name(key: str, value: str) -> bool:
    """Whether `key:value` names an option, rather than being a value that holds a colon: a
    time (10:30), a URL of any scheme (https://..., s3://...) or a deal id (deal:<slug>).
    Only the first colon splits, so an option's value keeps its own (as_of:2025-12-31T10:30)."""
    return key.isidentifier() and not value.startswith("//") and key.lower() not in VALUE_PREFIXES


def bind_arguments(
    command: Command, positional: list[str], named: dict[str, str]
) -> dict[str, str | list[str] | None]:
    """Match positional and name:value arguments to the command's options (raw text)."""
    known = {o.name for o in command.options}
    unknown = set(named) - known
    if unknown:
        raise UserInputError(
            f"/{command.name} has no option {', '.join(sorted(unknown))}; "
            f"its options are: {', '.join(o.name for o in command.options) or 'none'}"
        )
    raw: dict[str, str | list[str] | None] = {}
    rest = list(positional)
    for option in command.options:
        if option.name in named:
            value: str | list[str] = named[option.name]
            raw[option.name] = value.split(",") if option.kind == "labs" else value
        elif option.kind == "labs":
            raw[option.name], rest = (rest, []) if rest else (None, rest)
        elif rest:
            raw[option.name] = rest.pop(0)
        else:
            raw[option.name] = None
    if rest:
        raise UserInputError(f"/{command.name}: did not expect {' '.join(rest)!r}")
    return raw


def parse_arguments(
    ctx: CommandContext, command: Command, raw: dict[str, str | list[str] | None]
) -> dict[str, Any]:
    """Turn raw option text into typed values, with a clear error for each bad one."""
    values: dict[str, Any] = {}
    for option in command.options:
        text = raw.get(option.name)
        if text is None or text == "" or text == []:
            if option.required:
                raise UserInputError(f"/{command.name} needs {option.name} ({option.description})")
            values[option.name] = option.default
            continue
        values[option.name] = _parse_value(ctx, option, text)
    return values


def _parse_value(ctx: CommandContext, option: Option, text: str | list[str]) -> Any:
    if option.kind == "labs":
        items = text if isinstance(text, list) else [text]
        slugs = [parse_party(ctx.registry, t, option=option.name) for t in items if t.strip()]
        return list(dict.fromkeys(slugs))
    assert isinstance(text, str)
    if option.kind == "lab":
        return parse_party(ctx.registry, text, option=option.name)
    if option.kind == "date":
        return parse_moment(text, option=option.name, today=ctx.clock.now().date())
    if option.kind == "choice":
        return parse_choice(text, option.choices, option=option.name)
    if option.kind == "int":
        return parse_int(text, option=option.name)
    return text.strip()


def run_command_line(ctx: CommandContext, registry: CommandRegistry, line: str) -> Answer:
    """Parse and run one command line; UserInputError for anything the user should fix."""
    name, positional, named = split_command_line(line)
    command = registry.get(name)
    raw = bind_arguments(command, positional, named)
    return command.handler(ctx, **parse_arguments(ctx, command, raw))


def run_command(
    ctx: CommandContext,
    registry: CommandRegistry,
    name: str,
    raw: dict[str, str | list[str] | None],
) -> Answer:
    """Run a command from already separated option text (Discord, HTTP)."""
    command = registry.get(name)
    return command.handler(ctx, **parse_arguments(ctx, command, raw))
