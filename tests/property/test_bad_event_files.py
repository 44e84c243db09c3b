"""Bad event files, generated, for `computewatch import`: every bad line is named with its number
and a clear reason, a file with any bad line writes nothing (unless --skip-invalid, which writes
exactly the good lines), and the command ends with an exit code, not a traceback."""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bot.cli import main
from store.clock import ManualClock
from store.log import EventStore
from store.transfer import import_events
from tests.property.junk import (
    ANY_TEXT,
    JSON_SCALARS,
    JSON_VALUES,
    ShortRepr,
    assert_clear_message,
    bad_input_settings,
    broken_events,
    dumps,
    valid_event_dict,
)

NOW = datetime(2026, 8, 1, tzinfo=UTC)
# Every example's valid lines are new deals: a number never used before in this session.
_numbers = itertools.count(1)


class Store(ShortRepr, EventStore):
    def __repr__(self) -> str:
        return "<event store>"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    with Store(tmp_path_factory.mktemp("import") / "log.duckdb", clock=ManualClock(NOW)) as opened:
        yield opened


def text_line(text: str) -> bytes:
    """A line as a careless tool writes it (lone surrogates as their UTF-8-like bytes)."""
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "surrogatepass")


SURELY_BAD = st.one_of(
    ANY_TEXT.map(lambda t: text_line("{" + t)),
    st.one_of(JSON_SCALARS, st.lists(JSON_VALUES, max_size=3)).map(lambda v: text_line(dumps(v))),
    st.sampled_from(
        [
            b"[" * 5000 + b"]" * 5000,
            b'{"payload": ' + b"[" * 3000 + b"]" * 3000 + b"}",
            b"\xef\xbb\xbf{}",
            b"{}",
            b"NaN",
            b'{"type": "DealReported", "schema": true, "payload": {}}',
            b'{"type": ["DealReported"], "payload": {}}',
            b"1" * 5000,
            b'{"expected_version": ' + b"9" * 5000 + b"}",
            b"\x00\x00\x00",
            b"\xff\xfe\xfd",
        ]
    ),
)


class Lines(ShortRepr, list[bytes]):
    """A file's lines, shown cut short in Hypothesis' reports."""

    def __repr__(self) -> str:
        return (
            "["
            + ", ".join(repr(line[:60]) + ("..." if len(line) > 60 else "") for line in self)
            + "]"
        )


@st.composite
def files(draw: st.DrawFn) -> tuple[list[bytes], int]:
    """JSONL lines: valid events, broken events, blank lines and one line that is surely bad;
    returns the lines and the 1-based number of the surely bad one."""
    lines = Lines()
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["valid", "broken", "blank"]))
        if kind == "valid":
            lines.append(text_line(json.dumps(valid_event_dict(next(_numbers)))))
        elif kind == "broken":
            lines.append(text_line(dumps(draw(broken_events(next(_numbers))))))
        else:
            lines.append(draw(st.sampled_from([b"", b"   ", b"\t"])))
    bad_at = draw(st.integers(0, len(lines)))
    lines.insert(bad_at, draw(SURELY_BAD))
    return lines, bad_at + 1


def write(lines: list[bytes], ending: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False)
    with handle:
        handle.write(ending.join(lines) + ending)
    return Path(handle.name)


@bad_input_settings(max_examples=250)
@given(file=files(), ending=st.sampled_from([b"\n", b"\r\n", b"\r"]), skip=st.booleans())
def test_a_file_with_bad_lines_names_each_and_writes_only_what_it_says(
    store: EventStore, file: tuple[list[bytes], int], ending: bytes, skip: bool
) -> None:
    lines, bad_line = file
    path = write(lines, ending)
    before = store.count()
    try:
        report = import_events(store, path, skip_invalid=skip)
    finally:
        path.unlink()

    rejected = {r.line: r.reason for r in report.rejected}
    assert rejected, "the surely bad line was not rejected"
    first = min(rejected)
    # A line that is not UTF-8 stops the reading (the rest cannot be trusted to be lines).
    assert bad_line in rejected or "not UTF-8" in rejected[first] and first <= bad_line
    for reason in rejected.values():
        assert_clear_message(reason)
    if skip:
        event("skip-invalid")
        assert store.count() == before + report.new
    else:
        assert store.count() == before and report.new == 0 and not report.written


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("import-cli") / "cli.duckdb"
    EventStore(path, clock=ManualClock(NOW)).close()
    return path


@bad_input_settings(max_examples=40)
@given(file=files())
def test_computewatch_import_of_a_bad_file_exits_1_naming_the_lines_and_writes_nothing(
    cli_db: Path, capsys: pytest.CaptureFixture[str], file: tuple[list[bytes], int]
) -> None:
    lines, _ = file
    path = write(lines, b"\n")
    with EventStore(cli_db, clock=ManualClock(NOW)) as opened:
        before = opened.count()
    capsys.readouterr()
    try:
        code = main(["--db", str(cli_db), "import", str(path)])
    finally:
        path.unlink()

    out, err = capsys.readouterr()
    with EventStore(cli_db, clock=ManualClock(NOW)) as opened:
        assert opened.count() == before
    assert code == 1, (code, out, err)
    assert "nothing was imported" in err
    for line in err.strip().splitlines():
        assert_clear_message(line)
        assert line.startswith(("line ", "... and ")) or "nothing was imported" in line, line


@pytest.mark.parametrize(
    "where", [("payload", "chips"), ("payload",), ()], ids=["chips", "payload", "envelope"]
)
@pytest.mark.parametrize("key", ["\x1b[2J", "\x00", "\u202e"], ids=["escape", "nul", "bidi"])
def test_a_reason_never_repeats_control_characters_of_the_file(
    store: EventStore, where: tuple[str, ...], key: str
) -> None:
    event = valid_event_dict(next(_numbers))
    target = event
    for name in where:
        target = target.setdefault(name, {"vendor": "nvidia"})
    target[key] = 1
    path = write([text_line(json.dumps(event))], b"\n")
    try:
        report = import_events(store, path)
    finally:
        path.unlink()

    [rejected] = report.rejected
    assert_clear_message(rejected.reason)
    assert "\\x1b" in rejected.reason or key != "\x1b[2J"
