"""The smallest inputs that Hypothesis found breaking a surface (tests/property/test_bad_*.py),
kept as plain tests so that each stays fixed even when a run does not generate it again."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

from bot.commands.options import parse_day, parse_moment
from bot.commands.registry import CommandRegistry
from bot.discord_app.drafts import build_event, parse_occurred_at
from bot.errors import UserInputError, shown
from bot.feeds import MAX_RETRY_AFTER, FeedError, parse_items, retry_after
from events.envelope import NewEvent
from events.errors import UpcastError
from events.payloads import Chips, DealReported
from events.upcasters import upcast
from store.sandbox import SqlQueryError, SqlRefusedError, SqlSandbox
from tests.property.junk import assert_clear_message, valid_event_dict

NOW = datetime(2026, 8, 1, 12, tzinfo=UTC)


# -- SQL text ---------------------------------------------------------------------------------
@pytest.fixture
def sandbox(tmp_path: Path) -> SqlSandbox:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    return SqlSandbox(path, timeout_s=2)


def test_a_lone_surrogate_in_sql_is_refused_not_a_type_error(sandbox: SqlSandbox) -> None:
    with pytest.raises(SqlRefusedError, match="lone surrogate"):
        sandbox.run("SELECT '\ud800'")


def test_a_sql_error_does_not_echo_control_characters(sandbox: SqlSandbox) -> None:
    with pytest.raises(SqlQueryError) as raised:
        sandbox.run("\x1b[2J")

    assert_clear_message(str(raised.value))
    assert "\\x1b" in str(raised.value)


# -- payloads and envelopes -------------------------------------------------------------------
def deal(**fields: object) -> DealReported:
    base: dict[str, object] = {
        "lab": "openai",
        "kind": "cloud_contract",
        "status": "signed",
        "title": "t",
    }
    return DealReported(**(base | fields))


def test_capacity_true_is_refused_rather_than_read_as_one_megawatt() -> None:
    with pytest.raises(ValidationError, match="capacity_mw"):
        deal(capacity_mw=True)


def test_expected_version_true_is_refused_rather_than_read_as_version_one() -> None:
    with pytest.raises(ValidationError, match="expected_version"):
        NewEvent.from_json_dict(valid_event_dict(1) | {"expected_version": True})


def test_an_unknown_party_is_a_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError) as raised:
        Chips(vendor="nvidai")

    assert raised.value.errors()[0]["loc"] == ("vendor",)
    assert "Did you mean: nvidia?" in raised.value.errors()[0]["msg"]


def test_an_unknown_party_in_an_import_line_is_reported_like_any_bad_field() -> None:
    line = valid_event_dict(1)
    line["payload"]["lab"] = "antropic"

    with pytest.raises(ValidationError, match="lab\\n  Unknown party 'antropic'"):
        NewEvent.from_json_dict(line)


def test_a_schema_0_capacity_of_true_gigawatts_is_refused() -> None:
    with pytest.raises(UpcastError, match="capacity_gw"):
        upcast("DealReported", 0, {"capacity_gw": True, "headline": "x"})


def test_a_schema_0_capacity_beyond_any_float_is_refused_as_too_large() -> None:
    payload = upcast("DealReported", 0, {"capacity_gw": 10**400, "headline": "x"})

    with pytest.raises(ValidationError, match="capacity_mw"):
        deal(**{k: v for k, v in payload.items() if k != "title"})


# -- command options and form fields ------------------------------------------------------------
def test_an_unknown_command_made_of_control_characters_is_named_escaped() -> None:
    with pytest.raises(UserInputError) as raised:
        CommandRegistry().get("\x00\ud800")

    assert_clear_message(str(raised.value))
    assert "/\\x00\\ud800" in str(raised.value)


def test_shown_escapes_only_what_cannot_be_printed() -> None:
    assert shown("Ünïcode é") == "Ünïcode é"
    assert shown("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert shown("x" * 300) == "x" * 100 + "…"


def test_today_is_the_injected_clock_s_day() -> None:
    assert parse_day("today", today=date(2020, 5, 17)) == date(2020, 5, 17)
    assert parse_moment("today", option="as_of", today=date(2020, 5, 17)) == datetime(
        2020, 5, 17, 23, 59, 59, 999999, tzinfo=UTC
    )


def test_today_without_a_clock_is_asked_to_be_written_as_a_date() -> None:
    with pytest.raises(UserInputError, match="YYYY-MM-DD"):
        parse_day("today")


def test_the_form_reads_today_on_the_bot_s_clock() -> None:
    assert parse_occurred_at("today", NOW) == datetime(2026, 8, 1, tzinfo=UTC)


def test_the_form_refuses_a_day_in_the_future_before_confirm() -> None:
    with pytest.raises(UserInputError, match="in the future"):
        parse_occurred_at("2026-08-02", NOW)


def test_a_draft_error_does_not_echo_control_characters() -> None:
    with pytest.raises(UserInputError) as raised:
        build_event(
            stream_id="deal:acme-form-1",
            payload_cls=DealReported,
            fields={"lab": "openai", "kind": "cloud_contract", "status": "signed", "title": "t"}
            | {"chips": {"\x1f": None}},
            occurred_at=NOW,
            actor="discord:1",
            source_url="https://news.example.com/a",
            expected_version=None,
        )

    assert_clear_message(str(raised.value))


# -- event files ------------------------------------------------------------------------------
def test_a_deeply_nested_import_line_is_rejected_not_a_crash(tmp_path: Path) -> None:
    from store.transfer import read_events

    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 5000 + "]" * 5000 + "\n" + json.dumps(valid_event_dict(1)) + "\n")

    found = list(read_events(path))

    assert found[0][1].reason.startswith("nested too deeply")  # type: ignore[union-attr]
    assert isinstance(found[1][1], NewEvent)


# -- feed documents ---------------------------------------------------------------------------
def test_a_retry_after_of_many_digits_is_capped_not_an_overflow() -> None:
    assert retry_after("99999999999999", NOW) == MAX_RETRY_AFTER


def test_a_retry_after_of_superscript_digits_is_ignored() -> None:
    assert retry_after("²", NOW) is None


def test_a_feed_in_an_unknown_encoding_is_a_feed_error_not_a_lookup_error() -> None:
    document = b'<?xml version="1.0" encoding="no-such-codec"?><rss version="2.0"></rss>'

    try:
        items = parse_items(document, "https://feeds.example.com/rss")
    except FeedError:
        return
    assert items == []


def test_a_failed_cast_whose_error_duckdb_cannot_encode_is_a_query_error(
    sandbox: SqlSandbox,
) -> None:
    sql = "SELECT CAST('" + "0" * 44 + "\x80\x80" + "0" * 10 + "' AS JSON)"

    with pytest.raises(SqlQueryError, match="could not be read"):
        sandbox.run(sql)
