"""Pure parts of the digest: ISO weeks and their UTC bounds, and fitting Discord's limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.answers import Answer, Fact, Source
from bot.digest import (
    MAX_TOTAL_TEXT,
    answer_text_size,
    fit_to_discord,
    last_complete_week,
    parse_week,
    week_bounds,
)
from bot.errors import UserInputError


def test_a_week_is_written_the_iso_way_and_normalised() -> None:
    assert parse_week("2026-W05") == "2026-W05"
    assert parse_week("2026w5") == "2026-W05"


@pytest.mark.parametrize("text", ["2026-05", "W05", "2026-W54", "2025-W53"])
def test_a_week_that_does_not_exist_is_refused(text: str) -> None:
    with pytest.raises(UserInputError, match="week"):
        parse_week(text)


def test_a_week_spans_monday_to_sunday_in_utc() -> None:
    start, end = week_bounds("2026-W01")

    assert start == datetime(2025, 12, 29, tzinfo=UTC)
    assert end == datetime(2026, 1, 4, 23, 59, 59, 999_999, tzinfo=UTC)


def test_a_monday_run_covers_the_week_before() -> None:
    assert last_complete_week(datetime(2026, 2, 2, 8, tzinfo=UTC)) == "2026-W05"
    assert last_complete_week(datetime(2026, 2, 1, 23, tzinfo=UTC)) == "2026-W04"


def test_an_oversized_answer_is_cut_to_6000_characters() -> None:
    answer = Answer(
        command="digest",
        title="t",
        facts=[Fact(name=f"f{i}", value="x" * 1000) for i in range(10)],
        sources=[Source(title="s" * 100, url=f"https://example.com/{i}") for i in range(20)],
    )

    fitted = fit_to_discord(answer)

    assert answer_text_size(fitted) <= MAX_TOTAL_TEXT
    assert len(fitted.facts) == 10
