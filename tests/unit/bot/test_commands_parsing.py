"""The command-line parser of every surface: splitting, binding to options, and option values
(dates at the end of the day, labs by any name with "did you mean", choices by unique prefix)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.commands.catalog import build_registry
from bot.commands.options import (
    end_of_day,
    parse_choice,
    parse_day,
    parse_int,
    parse_moment,
    parse_party,
)
from bot.commands.registry import Command, Option, bind_arguments, split_command_line
from bot.errors import UserInputError
from events.parties import default_registry

COMMANDS = build_registry()
METRICS = ("committed_gw", "operational_gw", "committed_usd", "pipeline_usd", "deals")


def command(name: str) -> Command:
    return COMMANDS.get(name)


# -- split_command_line --------------------------------------------------------------------------


def test_split_separates_name_positional_and_named_arguments() -> None:
    parts = split_command_line("/position anthropic as_of:2025-12-31")

    assert parts == ("position", ["anthropic"], {"as_of": "2025-12-31"})


def test_split_accepts_a_command_without_its_slash() -> None:
    assert split_command_line("compare anthropic openai") == (
        "compare",
        ["anthropic", "openai"],
        {},
    )


def test_split_keeps_quoted_names_with_spaces_as_one_argument() -> None:
    parts = split_command_line("/position 'Claude maker' known_at:2026-01-31")

    assert parts == ("position", ["Claude maker"], {"known_at": "2026-01-31"})


def test_split_lowercases_option_names_but_not_values() -> None:
    _, _, named = split_command_line("/deals STATUS:Signed")

    assert named == {"status": "Signed"}


def test_split_keeps_urls_and_times_as_positional_arguments() -> None:
    _, positional, named = split_command_line("/x https://example.com/a:b 10:30")

    assert (positional, named) == (["https://example.com/a:b", "10:30"], {})


def test_split_ignores_surrounding_whitespace() -> None:
    assert split_command_line("   /labs   ") == ("labs", [], {})


def test_split_rejects_an_empty_line() -> None:
    with pytest.raises(UserInputError, match="Type a command"):
        split_command_line("   ")


def test_split_rejects_an_unbalanced_quote() -> None:
    with pytest.raises(UserInputError, match="Could not read the command"):
        split_command_line("/position 'Claude maker")


# -- bind_arguments ------------------------------------------------------------------------------


def test_bind_fills_options_in_order_from_positional_arguments() -> None:
    raw = bind_arguments(command("explain"), ["anthropic", "contracted", "2025-12-31"], {})

    assert raw == {
        "lab": "anthropic",
        "bucket": "contracted",
        "as_of": "2025-12-31",
        "known_at": None,
    }


def test_bind_lets_named_options_skip_positions() -> None:
    raw = bind_arguments(command("deals"), ["anthropic"], {"status": "signed"})

    assert raw == {
        "lab": "anthropic",
        "status": "signed",
        "kind": None,
        "since": None,
        "page": None,
    }


def test_bind_gives_every_remaining_positional_argument_to_a_list_of_labs() -> None:
    raw = bind_arguments(
        command("compare"), ["anthropic", "openai", "xai"], {"as_of": "2026-01-01"}
    )

    assert raw == {"labs": ["anthropic", "openai", "xai"], "as_of": "2026-01-01", "known_at": None}


def test_bind_splits_a_named_list_of_labs_on_commas() -> None:
    raw = bind_arguments(command("compare"), [], {"labs": "anthropic,openai"})

    assert raw["labs"] == ["anthropic", "openai"]


def test_bind_names_the_unknown_option_and_lists_the_known_ones() -> None:
    with pytest.raises(UserInputError) as raised:
        bind_arguments(command("position"), ["anthropic"], {"colour": "blue"})

    assert str(raised.value) == (
        "/position has no option colour; its options are: lab, as_of, known_at"
    )


def test_bind_rejects_extra_positional_arguments() -> None:
    with pytest.raises(UserInputError, match="did not expect 'surplus'"):
        bind_arguments(
            command("position"), ["anthropic", "2025-01-01", "2025-02-01", "surplus"], {}
        )


def test_bind_says_a_command_without_options_has_none() -> None:
    with pytest.raises(UserInputError, match="its options are: none"):
        bind_arguments(command("labs"), [], {"lab": "anthropic"})


def test_a_deal_stream_id_can_be_given_to_the_deal_command() -> None:
    _, positional, named = split_command_line("/deal deal:xai-colossus-1-memphis")

    raw = bind_arguments(command("deal"), positional, named)

    assert raw == {"id": "deal:xai-colossus-1-memphis"}


def test_a_deal_stream_id_can_be_the_value_of_a_named_option() -> None:
    _, positional, named = split_command_line("/deal id:deal:xai-colossus-1-memphis")

    raw = bind_arguments(command("deal"), positional, named)

    assert raw == {"id": "deal:xai-colossus-1-memphis"}


def test_a_deal_stream_id_in_any_case_is_a_value() -> None:
    _, positional, named = split_command_line("/deal DEAL:xai-colossus-1-memphis")

    assert (positional, named) == (["DEAL:xai-colossus-1-memphis"], {})


@pytest.mark.parametrize(
    "url", ["https://example.com/a?b=c:d", "http://example.com", "s3://bucket/key", "ftp://x/y"]
)
def test_a_url_of_any_scheme_is_a_value_not_an_option(url: str) -> None:
    _, positional, named = split_command_line(f"/x {url}")

    assert (positional, named) == ([url], {})


def test_a_named_option_keeps_the_colons_of_its_value() -> None:
    _, _, named = split_command_line(
        "/x source:https://example.com/a:b as_of:2025-12-31T10:30:00 at:10:30"
    )

    assert named == {
        "source": "https://example.com/a:b",
        "as_of": "2025-12-31T10:30:00",
        "at": "10:30",
    }


def test_an_iso_time_given_positionally_is_a_value() -> None:
    _, positional, named = split_command_line("/position anthropic 2025-12-31T10:30:00")

    assert (positional, named) == (["anthropic", "2025-12-31T10:30:00"], {})


def test_a_time_in_a_date_option_is_refused_with_the_expected_format() -> None:
    _, positional, named = split_command_line("/position anthropic as_of:2025-12-31T10:30")
    raw = bind_arguments(command("position"), positional, named)

    with pytest.raises(UserInputError, match="as_of: '2025-12-31T10:30' is not a date"):
        parse_moment(raw["as_of"], option="as_of")  # type: ignore[arg-type]


def test_an_option_cannot_be_named_like_a_value_prefix() -> None:
    with pytest.raises(ValueError, match="would be read as a value like deal:<id>"):
        Command("x", "x", (Option("deal", "the deal", "deal"),), handler=lambda ctx: None)  # type: ignore[arg-type,return-value]


# -- the command registry ------------------------------------------------------------------------


def test_registry_finds_a_command_by_name_with_or_without_slash_in_any_case() -> None:
    assert command("/Position").name == command("position").name == "position"


def test_registry_suggests_a_close_command_name() -> None:
    with pytest.raises(UserInputError) as raised:
        COMMANDS.get("positon")

    assert str(raised.value) == "There is no command /positon. Did you mean /position? Try /help."


def test_registry_points_to_help_when_nothing_is_close() -> None:
    with pytest.raises(UserInputError) as raised:
        COMMANDS.get("zzz")

    assert str(raised.value) == "There is no command /zzz. Try /help."


# -- dates ---------------------------------------------------------------------------------------


def test_a_date_option_means_the_end_of_that_utc_day() -> None:
    when = parse_moment("2025-12-31", option="as_of")

    assert when == datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_end_of_day_is_the_last_microsecond_before_the_next_day() -> None:
    last = end_of_day(date(2024, 2, 28))

    assert last == datetime(2024, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC)
    assert last + timedelta(microseconds=1) == datetime(2024, 2, 29, tzinfo=UTC)


@pytest.mark.parametrize("text", [None, "", "  ", "now", "NOW"])
def test_an_empty_or_now_date_option_means_now(text: str | None) -> None:
    assert parse_moment(text, option="as_of") is None


@pytest.mark.parametrize("text", ["2025-13-01", "31/12/2025", "yesterday", "2025-02-30"])
def test_a_bad_date_names_the_option_and_the_expected_format(text: str) -> None:
    with pytest.raises(UserInputError) as raised:
        parse_moment(text, option="as_of")

    assert str(raised.value) == (
        f"as_of: {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-12-31"
    )


@pytest.mark.parametrize("text", ["1989-12-31", "2201-01-01"])
def test_a_date_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(UserInputError, match="out of range"):
        parse_moment(text, option="known_at")


def test_parse_day_reads_an_iso_day() -> None:
    assert parse_day(" 2026-02-23 ") == date(2026, 2, 23)


# -- labs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["anthropic", "Anthropic", "ANTHROPIC", "Claude maker", "anthropic pbc"]
)
def test_a_lab_is_found_by_slug_name_or_alias_in_any_case(text: str) -> None:
    assert parse_party(default_registry(), text) == "anthropic"


def test_an_unknown_lab_gets_a_did_you_mean_suggestion() -> None:
    with pytest.raises(UserInputError) as raised:
        parse_party(default_registry(), "anthropik")

    assert (
        str(raised.value) == "lab: no lab or company is called 'anthropik'. Did you mean anthropic?"
    )


def test_an_unknown_lab_with_nothing_close_points_to_the_labs_command() -> None:
    with pytest.raises(UserInputError) as raised:
        parse_party(default_registry(), "qqqqqq", option="labs")

    assert str(raised.value) == "labs: no lab or company is called 'qqqqqq'. /labs lists the labs."


# -- choices and numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("committed_usd", "committed_usd"),
        ("Committed-USD", "committed_usd"),
        ("committed usd", "committed_usd"),
        ("op", "operational_gw"),
        ("pipe", "pipeline_usd"),
        ("d", "deals"),
    ],
)
def test_a_choice_is_taken_by_name_or_by_unique_prefix(text: str, chosen: str) -> None:
    assert parse_choice(text, METRICS, option="metric") == chosen


@pytest.mark.parametrize("text", ["committed", "nonsense"])
def test_an_ambiguous_or_unknown_choice_lists_the_choices(text: str) -> None:
    with pytest.raises(UserInputError) as raised:
        parse_choice(text, METRICS, option="metric")

    assert str(raised.value) == f"metric: {text!r} is not one of {', '.join(METRICS)}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("two", "page: 'two' is not a whole number"),
        ("0", "page: must be between 1 and 10000"),
        ("10001", "page: must be between 1 and 10000"),
    ],
)
def test_a_bad_number_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UserInputError) as raised:
        parse_int(text, option="page")

    assert str(raised.value) == message


def test_a_number_within_range_is_read() -> None:
    assert parse_int(" 3 ", option="page") == 3
