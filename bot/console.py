"""The local console: the same commands as Discord, typed at a prompt, answered as text."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from bot import review
from bot.answers import Answer
from bot.commands.registry import run_command_line
from bot.errors import UserInputError
from bot.render import render_json, render_text
from bot.services import Services

log = logging.getLogger(__name__)
BANNER = "computewatch console. Type /help for commands, /quit to leave."
CONSOLE_ACTOR = "console"


def split_flags(line: str) -> tuple[str, bool, str | None]:
    """Strip the console flags --json and --chart FILE from a command line."""
    words = line.split()
    as_json = "--json" in words
    chart = None
    if "--chart" in words:
        i = words.index("--chart")
        if i + 1 >= len(words):
            raise UserInputError("--chart needs a file name, e.g. --chart anthropic.png")
        chart = words[i + 1]
        del words[i : i + 2]
    words = [w for w in words if w != "--json"]
    return " ".join(words), as_json, chart


def write_chart(services: Services, answer: Answer, path: str) -> str:
    """Draw the answer's chart to a PNG file; a message says where, or why not."""
    from bot.chart_service import chart_png  # matplotlib loads only when a chart is asked for

    if answer.chart is None:
        return f"/{answer.command} has no chart."
    Path(path).write_bytes(chart_png(services.context, answer.chart))
    return f"Chart written to {path}"


def review_line(services: Services, line: str) -> str | None:
    """`/review accept ID [status:S] [deal:D]` or `/review reject ID REASON...`: the decision
    written as actor `console`; None for any other line (a command of the registry)."""
    words = line.split()
    if len(words) < 2 or words[0].lower() != "/review" or words[1] not in ("accept", "reject"):
        return None
    action, args = words[1], words[2:]
    if not args:
        raise UserInputError(f"/review {action} needs a candidate id; /review lists them")
    store = services.store
    stream = review.resolve_stream(store, args[0])
    if action == "reject":
        reason = " ".join(args[1:]).strip()
        if not reason:
            raise UserInputError(
                "/review reject needs a reason, e.g. /review reject ab12 duplicate"
            )
        review.reject(store, stream, CONSOLE_ACTOR, reason)
        return f"Rejected {review.short_id(stream)}: no deal event was written.\n"
    edits: dict[str, object] = {}
    for arg in args[1:]:
        key, sep, value = arg.partition(":")
        if not sep or key not in ("status", "deal"):
            raise UserInputError(
                f"/review accept: did not expect {arg!r}; options are status:<status> and "
                "deal:<deal id>"
            )
        edits["deal_id" if key == "deal" else key] = value
    decision = review.accept(store, stream, CONSOLE_ACTOR, edits)
    written = [e for e in decision.events if e.stream_id != stream]
    return (
        f"Accepted {review.short_id(stream)} as {decision.action} of deal {decision.deal_id}: "
        f"{', '.join(e.type for e in written) or 'no deal event'} written.\n"
    )


def answer_line(services: Services, line: str) -> str:
    """One console line in, the text to print out (errors as a friendly message)."""
    try:
        decided = review_line(services, line)
        if decided is not None:
            return decided
        text, as_json, chart = split_flags(line)
        answer = run_command_line(services.context, services.commands, text)
        out = render_json(answer) if as_json else render_text(answer)
        if chart:
            out += write_chart(services, answer, chart) + "\n"
        return out
    except UserInputError as exc:
        return f"! {exc}\n"
    except Exception:  # noqa: BLE001 - the console's one global handler
        log.exception("command failed: %s", line)
        return "! Something went wrong; the error is in the log.\n"


def run_console(
    services: Services,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    history: Path | None = None,
) -> None:
    """Interactive prompt with history and completion on a terminal; plain lines otherwise."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if stdin.isatty() and stdout.isatty():
        _run_prompt(services, history)
        return
    for line in stdin:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in ("/quit", "/exit", "quit", "exit"):
            break
        stdout.write(answer_line(services, line))
        stdout.flush()


def completion_words(services: Services) -> list[str]:
    """What the prompt completes: command names, lab slugs and deal ids."""
    words = [f"/{c.name}" for c in services.commands]
    words += sorted({p.lab for p in services.context.queries.positions()})
    words += services.store.deal_ids()
    return words


def _run_prompt(services: Services, history: Path | None) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)) if history else InMemoryHistory(),
        completer=WordCompleter(completion_words(services), sentence=True),
    )
    print(BANNER)
    while True:
        try:
            line = session.prompt("computewatch> ").strip()
        except (EOFError, KeyboardInterrupt):
            return
        if line in ("/quit", "/exit", "quit", "exit"):
            return
        if line:
            print(answer_line(services, line), end="")
