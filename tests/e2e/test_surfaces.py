"""One table of command cases through every surface: the command layer, the console and the CLI
(`computewatch ask`, text and --json) give the same answer, and the same errors.

The CLI runs through its real entry point, bot.cli.main, in this process for every case (a new
process per case costs ~1 s of imports on a loaded machine), and as a real `python -m bot`
subprocess for a sample of cases and errors. Each CLI run opens its own copy of one seeded
database file, because DuckDB lets only one connection configuration write a file at a time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest

from bot.cli import main as cli_main
from bot.commands.registry import run_command_line
from bot.console import run_console
from bot.errors import UserInputError
from bot.render import render_json, render_text
from bot.services import Services, open_services
from store.clock import ManualClock

REPO = Path(__file__).resolve().parents[2]
# Later than the newest ledger event (2026-07-04).
CLOCK_AT = datetime(2026, 11, 1, tzinfo=UTC)

CASES = (
    "/position anthropic as_of:2025-12-31",
    "/position xai as_of:2026-03-01 known_at:2026-12-31",
    "/compare anthropic openai",
    "/compare anthropic openai xai as_of:2026-01-31",
    "/leaderboard committed_usd",
    "/deals anthropic status:signed",
    "/deal colossus1",
    "/explain anthropic contracted",
    "/labs",
    "/coverage",
    "/help position",
)
# The sample that also runs as a real subprocess.
SUBPROCESS_CASES = ("/position anthropic as_of:2025-12-31", "/compare anthropic openai")

# (command line, what the message must say)
ERROR_CASES = (
    ("/position anthropik", "Did you mean anthropic?"),
    ("/position anthropic as_of:2025-13-01", "is not a date"),
    ("/position anthropic colour:blue", "has no option colour"),
    ("/positon anthropic", "Did you mean /position?"),
    ("/compare anthropic", "at least two labs"),
    ("/leaderboard nonsense", "is not one of"),
)
SUBPROCESS_ERRORS = ("/position anthropik",)

POSITION_KEYS = {
    "lab",
    "as_of",
    "known_at",
    "capacity_mw",
    "committed_usd",
    "pipeline_usd",
    "backing_usd",
    "by_kind",
    "by_provider",
    "provider_hhi",
    "chips",
    "deals",
}


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    """`computewatch --db <copy> ask ...`, each run on a private copy of the seeded database."""

    def __init__(self, pristine_db: Path, workdir: Path) -> None:
        self.pristine_db = pristine_db
        self.workdir = workdir
        self._ids = count()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k.upper() not in ("DISCORD_TOKEN", "COMPUTEWATCH_DB", "COMPUTEWATCH_SEED")
        }
        self.env["PYTHONPATH"] = str(REPO)

    def _copy(self) -> Path:
        db = self.workdir / f"copy-{next(self._ids)}.duckdb"
        shutil.copyfile(self.pristine_db, db)
        return db

    def ask(self, line: str, *flags: str) -> CliResult:
        """Through bot.cli.main in this process, stdout and stderr captured."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main(["--db", str(self._copy()), "ask", line, *flags])
        return CliResult(code, out.getvalue(), err.getvalue())

    def ask_process(self, line: str, *flags: str) -> CliResult:
        """As a real `python -m bot` process."""
        done = subprocess.run(
            [sys.executable, "-m", "bot", "--db", str(self._copy()), "ask", line, *flags],
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=self.env,
            cwd=self.workdir,
            timeout=120,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def pristine_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed database file with the bundled ledger; only ever copied, never opened."""
    directory = tmp_path_factory.mktemp("surfaces")
    seeded = directory / "seeded.duckdb"
    open_services(seeded, clock=ManualClock(CLOCK_AT)).close()
    pristine = directory / "pristine.duckdb"
    shutil.copyfile(seeded, pristine)
    return pristine


@pytest.fixture(scope="module")
def services(pristine_db: Path) -> Iterator[Services]:
    own = pristine_db.with_name("services.duckdb")
    shutil.copyfile(pristine_db, own)
    opened = open_services(own, clock=ManualClock(CLOCK_AT))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def cli(pristine_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(pristine_db, tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def cli_answers(cli: Cli) -> dict[tuple[str, bool], CliResult]:
    """Every case (text and --json) and every error case (text) through the CLI entry point."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("DISCORD_TOKEN", "COMPUTEWATCH_DB", "COMPUTEWATCH_SEED"):
            env.delenv(name, raising=False)
        answers = {
            (line, as_json): cli.ask(line, *(["--json"] if as_json else []))
            for line in CASES
            for as_json in (False, True)
        }
        answers.update({(line, False): cli.ask(line) for line, _ in ERROR_CASES})
        answers[(ERROR_CASES[0][0], True)] = cli.ask(ERROR_CASES[0][0], "--json")
    return answers


@pytest.fixture(scope="module")
def process_answers(cli: Cli) -> dict[tuple[str, bool], CliResult]:
    """The sample through real `python -m bot` processes, two at a time."""
    jobs = [(SUBPROCESS_CASES[0], False), (SUBPROCESS_CASES[0], True), (SUBPROCESS_CASES[1], True)]
    jobs += [(line, False) for line in SUBPROCESS_ERRORS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(
            lambda job: cli.ask_process(job[0], *(["--json"] if job[1] else [])), jobs
        )
        return dict(zip(jobs, results, strict=True))


def console(services: Services, text: str) -> str:
    out = io.StringIO()
    run_console(services, stdin=io.StringIO(text), stdout=out)
    return out.getvalue()


def command_error(services: Services, line: str) -> UserInputError:
    with pytest.raises(UserInputError) as raised:
        run_command_line(services.context, services.commands, line)
    return raised.value


# -- the same answer everywhere ------------------------------------------------------------------


@pytest.mark.parametrize("line", CASES)
def test_console_prints_the_command_layer_text(services: Services, line: str) -> None:
    answer = run_command_line(services.context, services.commands, line)

    printed = console(services, line + "\n")

    assert printed == render_text(answer)


@pytest.mark.parametrize("line", CASES)
def test_console_json_flag_prints_the_command_layer_data(services: Services, line: str) -> None:
    answer = run_command_line(services.context, services.commands, line)

    printed = console(services, line + " --json\n")

    assert json.loads(printed) == json.loads(render_json(answer))


@pytest.mark.parametrize("line", CASES)
def test_cli_ask_prints_the_command_layer_text(
    services: Services, cli_answers: dict[tuple[str, bool], CliResult], line: str
) -> None:
    answer = run_command_line(services.context, services.commands, line)

    result = cli_answers[(line, False)]

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == render_text(answer)


@pytest.mark.parametrize("line", CASES)
def test_cli_ask_json_prints_the_command_layer_data(
    services: Services, cli_answers: dict[tuple[str, bool], CliResult], line: str
) -> None:
    answer = run_command_line(services.context, services.commands, line)

    result = cli_answers[(line, True)]

    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == json.loads(render_json(answer))


@pytest.mark.parametrize(
    ("line", "as_json"),
    [(SUBPROCESS_CASES[0], False), (SUBPROCESS_CASES[0], True), (SUBPROCESS_CASES[1], True)],
)
def test_cli_process_prints_what_the_cli_entry_point_prints(
    cli_answers: dict[tuple[str, bool], CliResult],
    process_answers: dict[tuple[str, bool], CliResult],
    line: str,
    as_json: bool,
) -> None:
    in_process = cli_answers[(line, as_json)]

    result = process_answers[(line, as_json)]

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == in_process.stdout


def test_cli_position_json_has_exactly_the_public_contract_keys(
    process_answers: dict[tuple[str, bool], CliResult],
) -> None:
    data = json.loads(process_answers[("/position anthropic as_of:2025-12-31", True)].stdout)

    assert set(data) == POSITION_KEYS
    assert set(data["capacity_mw"]) == {"operational", "contracted", "pipeline", "rumored"}
    assert (data["lab"], data["as_of"], data["known_at"]) == ("anthropic", "2025-12-31", None)


def test_cli_position_json_carries_the_hand_computed_figures(
    process_answers: dict[tuple[str, bool], CliResult],
) -> None:
    data = json.loads(process_answers[("/position anthropic as_of:2025-12-31", True)].stdout)

    # reference deals.jsonl: by 2025-12-31 Anthropic holds google-tpu-1m 1000 MW (line 7),
    # microsoft-nvidia 1000 MW (line 9) and hut8-river-bend 245 MW (line 12): 2245 MW signed;
    # committed: microsoft 30B + broadcom racks 21B + fluidstack 50B = 101B (river bend's 7B is
    # inside the fluidstack 50B); backing: google 0.4B + amazon 8B = 8.4B; 8 deals
    assert data["capacity_mw"] == {
        "operational": 0.0,
        "contracted": 2245.0,
        "pipeline": 0.0,
        "rumored": 0.0,
    }
    assert (data["committed_usd"], data["backing_usd"], data["deals"]) == (101e9, 8.4e9, 8)


def test_position_json_dates_echo_as_of_and_known_at(
    cli_answers: dict[tuple[str, bool], CliResult],
) -> None:
    data = json.loads(
        cli_answers[("/position xai as_of:2026-03-01 known_at:2026-12-31", True)].stdout
    )

    assert (data["as_of"], data["known_at"]) == ("2026-03-01", "2026-12-31")


def test_deal_timeline_text_shows_plain_values_not_python_reprs(services: Services) -> None:
    answer = run_command_line(services.context, services.commands, "/deal colossus1")

    text = render_text(answer)

    assert "<Role." not in text
    assert "'role': 'provider'" in text


# -- the same error everywhere -------------------------------------------------------------------


@pytest.mark.parametrize(("line", "says"), ERROR_CASES)
def test_command_layer_rejects_bad_input_with_a_helpful_message(
    services: Services, line: str, says: str
) -> None:
    with pytest.raises(UserInputError, match=re.escape(says)):
        run_command_line(services.context, services.commands, line)


@pytest.mark.parametrize(("line", "says"), ERROR_CASES)
def test_console_prints_the_command_layer_error(services: Services, line: str, says: str) -> None:
    error = command_error(services, line)

    printed = console(services, line + "\n")

    assert printed == f"! {error}\n"
    assert says in printed


@pytest.mark.parametrize(("line", "says"), ERROR_CASES)
def test_cli_exits_2_with_the_command_layer_error_on_stderr(
    services: Services,
    cli_answers: dict[tuple[str, bool], CliResult],
    line: str,
    says: str,
) -> None:
    error = command_error(services, line)

    result = cli_answers[(line, False)]

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {error}\n"
    assert says in result.stderr


def test_cli_json_flag_does_not_turn_an_error_into_json(
    services: Services,
    cli_answers: dict[tuple[str, bool], CliResult],
) -> None:
    line = ERROR_CASES[0][0]
    error = command_error(services, line)

    result = cli_answers[(line, True)]

    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"error: {error}\n")


@pytest.mark.parametrize("line", SUBPROCESS_ERRORS)
def test_cli_process_exits_2_with_the_did_you_mean_message_on_stderr(
    services: Services,
    process_answers: dict[tuple[str, bool], CliResult],
    line: str,
) -> None:
    error = command_error(services, line)

    result = process_answers[(line, False)]

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {error}\n"
    assert "Did you mean" in result.stderr


# -- the console as a session --------------------------------------------------------------------


def test_console_skips_comments_and_blank_lines_and_stops_at_quit(services: Services) -> None:
    script = "# a comment\n\n/help position\n/quit\n/labs\n"

    printed = console(services, script)

    expected = render_text(run_command_line(services.context, services.commands, "/help position"))
    assert printed == expected


def test_console_keeps_going_after_an_error(services: Services) -> None:
    printed = console(services, "/positon anthropic\n/help position\n")

    first, _, rest = printed.partition("\n")
    assert first.startswith("! There is no command /positon.")
    assert rest == render_text(
        run_command_line(services.context, services.commands, "/help position")
    )


# -- charts --------------------------------------------------------------------------------------


def test_cli_ask_chart_writes_a_png_and_keeps_json_on_stdout(cli: Cli, tmp_path: Path) -> None:
    if not (REPO / "bot" / "charts.py").is_file():
        pytest.skip("bot/charts.py is not there yet")
    chart = tmp_path / "anthropic.png"

    # an early as_of keeps the chart's monthly series short (it starts at the first event)
    result = cli.ask("/position anthropic as_of:2023-06-30", "--json", "--chart", str(chart))

    assert result.returncode == 0, result.stderr
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert json.loads(result.stdout)["lab"] == "anthropic"
    assert str(chart) in result.stderr
