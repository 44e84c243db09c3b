"""Bad command options, generated: every command's options (as Discord and the HTTP API pass them)
and whole command lines (console, `computewatch ask`) end in an answer or a clear message, and
nothing is written to the log."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bot.answers import Answer
from bot.cli import main
from bot.commands.catalog import build_registry
from bot.commands.registry import Command, parse_arguments, run_command, run_command_line
from bot.errors import UserInputError
from bot.services import Services, open_services
from store.clock import ManualClock
from tests.property.junk import (
    ANY_TEXT,
    JUNK_TEXT,
    NASTY_TEXT,
    ShortRepr,
    assert_clear_message,
    bad_input_settings,
)

NOW = datetime(2026, 8, 1, tzinfo=UTC)
COMMANDS = sorted(c.name for c in build_registry())


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("options") / "seeded.duckdb"
    open_services(path, clock=ManualClock(NOW)).close()
    return path


class SeededServices(ShortRepr, Services):
    """The services over the seeded file, with a short repr for Hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<services over {self.store.path.name}>"


@pytest.fixture(scope="module")
def services(seeded_db: Path) -> Iterator[Services]:
    opened = open_services(seeded_db, seed=False, clock=ManualClock(NOW))
    wrapped = SeededServices(opened.store, opened.context, opened.commands)
    try:
        yield wrapped
    finally:
        opened.close()


GOOD = {
    "lab": ["anthropic", "OpenAI", "AWS"],
    "labs": ["anthropic", "openai"],
    "date": ["2025-12-31", "today", "now", "2026-02-28"],
    "int": ["1", "2"],
    "choice": ["signed", "contracted", "committed_usd", "cloud"],
    "deal": ["anthropic-google", "openai"],
    "text": ["2026-W05", "position"],
}


def junk_option(option_kind: str) -> st.SearchStrategy[Any]:
    """What a surface may hand parse_arguments for one option: text, a list (labs), nothing."""
    if option_kind == "labs":
        return st.lists(JUNK_TEXT | st.sampled_from(GOOD["labs"]), max_size=8) | JUNK_TEXT
    return JUNK_TEXT


@st.composite
def raw_options(draw: st.DrawFn, command: Command) -> dict[str, Any]:
    """Usable values (or none) for every option but one, which gets junk: junk in the first
    option must not hide what the others do with theirs."""
    bad = draw(st.sampled_from([o.name for o in command.options] or [""]), label="junk option")
    raw: dict[str, Any] = {}
    for option in command.options:
        if option.name == bad:
            raw[option.name] = draw(junk_option(option.kind), label=option.name)
        else:
            good = st.sampled_from(GOOD[option.kind])
            raw[option.name] = draw(good if option.required else st.none() | good)
    return raw


def check_answer_or_message(run: Any) -> Answer | None:
    try:
        answer = run()
    except UserInputError as exc:
        assert_clear_message(str(exc))
        event("refused")
        return None
    assert isinstance(answer, Answer)
    event("answered")
    return answer


@bad_input_settings(max_examples=300)
@given(data=st.data(), name=st.sampled_from(COMMANDS))
def test_every_option_of_every_command_is_read_or_refused_with_a_clear_message(
    services: Services, data: st.DataObject, name: str
) -> None:
    command = services.commands.get(name)
    raw = data.draw(raw_options(command))

    try:
        values = parse_arguments(services.context, command, raw)
    except UserInputError as exc:
        assert_clear_message(str(exc))
    else:
        assert set(values) == {o.name for o in command.options}


@bad_input_settings(max_examples=150)
@given(data=st.data(), name=st.sampled_from(COMMANDS))
def test_a_command_run_with_bad_options_answers_or_explains_and_writes_nothing(
    services: Services, data: st.DataObject, name: str
) -> None:
    command = services.commands.get(name)
    raw = data.draw(raw_options(command))
    head = services.store.head

    check_answer_or_message(lambda: run_command(services.context, services.commands, name, raw))

    assert services.store.head == head


TOKENS = st.one_of(
    JUNK_TEXT,
    st.tuples(
        st.sampled_from(["as_of", "known_at", "lab", "labs", "metric", "page", "since", "x", "id"]),
        JUNK_TEXT,
    ).map(lambda kv: f"{kv[0]}:{kv[1]}"),
)
LINES = st.one_of(
    ANY_TEXT,
    st.tuples(
        st.sampled_from(COMMANDS) | NASTY_TEXT,
        st.lists(TOKENS, max_size=5),
        st.sampled_from(["", "/"]),
    ).map(lambda t: t[2] + t[0] + " " + " ".join(t[1])),
)


@bad_input_settings(max_examples=200)
@given(line=LINES)
def test_a_bad_command_line_answers_or_explains_and_writes_nothing(
    services: Services, line: str
) -> None:
    head = services.store.head

    check_answer_or_message(lambda: run_command_line(services.context, services.commands, line))

    assert services.store.head == head


@pytest.fixture(scope="module")
def cli_db(seeded_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy for `computewatch ask`, which opens the file itself (a process of its own)."""
    path = tmp_path_factory.mktemp("ask") / "ask.duckdb"
    shutil.copy(seeded_db, path)
    return path


@bad_input_settings(max_examples=30)
@given(line=LINES)
def test_computewatch_ask_prints_an_answer_or_one_error_line(
    cli_db: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    capsys.readouterr()

    code = main(["--db", str(cli_db), "ask", "--", line])

    out, err = capsys.readouterr()
    if code == 0:
        assert out.strip() and not err.strip()
    else:
        assert code == 2, (code, err)
        assert err.startswith("error: ")
        assert_clear_message(err)
