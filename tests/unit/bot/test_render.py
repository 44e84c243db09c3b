"""The text and JSON renderers of answers (bot/render.py) and the figure formats they show
(bot/formats.py): pure functions, answers built by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from bot.answers import Answer, Fact, Source, Table
from bot.formats import count, gw, ratio, signed_gw, usd
from bot.render import render_json, render_text


def answer(**fields: object) -> Answer:
    return Answer.model_validate(
        {"command": "position", "title": "Acme AI: compute position", **fields}
    )


# -- text ----------------------------------------------------------------------------------------


def test_text_starts_with_the_title_underlined_to_its_length() -> None:
    text = render_text(answer())

    assert text == "Acme AI: compute position\n=========================\n"


def test_text_underline_is_cut_at_the_width() -> None:
    text = render_text(answer(title="T" * 30), width=20)

    # the title folds onto two lines of the width; the underline stops at the width
    assert text.splitlines() == ["T" * 20, "T" * 10, "=" * 20]


def test_text_lists_facts_with_names_padded_to_one_column() -> None:
    text = render_text(
        answer(facts=[Fact(name="Operational", value="1.2 GW"), Fact(name="Deals", value="8")])
    )

    assert text.splitlines()[2:] == ["  Operational  1.2 GW", "  Deals        8"]


def test_text_shows_summary_then_facts_then_table_then_notes_then_sources() -> None:
    text = render_text(
        answer(
            summary="As of 2025-12-31.",
            facts=[Fact(name="Deals", value="8")],
            table=Table(
                columns=["Supplier", "MW"], rows=[["google", "1000"]], numeric=[False, True]
            ),
            notes=["a note"],
            sources=[Source(title="Example", url="https://example.com/a")],
        )
    )

    lines = text.splitlines()
    positions = [
        next(i for i, line in enumerate(lines) if marker in line)
        for marker in (
            "As of 2025-12-31.",
            "Deals",
            "Supplier",
            "* a note",
            "Sources:",
            "  - Example: https://example.com/a",
        )
    ]
    assert positions == sorted(positions)


def test_text_right_aligns_numeric_columns_and_left_aligns_the_rest() -> None:
    table = Table(
        columns=["lab", "committed"],
        rows=[["a", "1 GW"], ["bbbbbbbbbbbb", "11.05 GW"]],
        numeric=[False, True],
    )

    lines = render_text(answer(table=table)).splitlines()

    row_a = next(line for line in lines if line.startswith("a "))
    row_b = next(line for line in lines if line.startswith("bbbbbbbbbbbb"))
    assert row_a.endswith("1 GW") and row_b.endswith("11.05 GW")
    assert len(row_a.rstrip()) == len(row_b.rstrip())


def test_text_leaves_out_an_empty_table() -> None:
    text = render_text(answer(table=Table(columns=["deal", "status"], rows=[])))

    assert "deal" not in text


def test_text_has_no_colour_codes_and_ends_with_one_newline() -> None:
    text = render_text(
        answer(
            summary="[bold]not markup[/bold] :smile:",
            table=Table(columns=["a"], rows=[["[red]x[/red]"]]),
        )
    )

    assert "\x1b[" not in text
    assert "[bold]not markup[/bold] :smile:" in text
    assert "[red]x[/red]" in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_text_keeps_every_line_within_the_width() -> None:
    long = "word " * 60
    text = render_text(
        answer(summary=long, table=Table(columns=["detail", "n"], rows=[[long, "1"]])), width=60
    )

    assert max(len(line) for line in text.splitlines()) <= 60


def test_text_rendering_is_a_pure_function_of_the_answer() -> None:
    a = answer(summary="s", facts=[Fact(name="x", value="1")], notes=["n"])

    assert render_text(a) == render_text(a.model_copy())


# -- JSON ----------------------------------------------------------------------------------------


def test_json_is_the_answer_data_only() -> None:
    data = {"lab": "acme", "capacity_mw": {"operational": 1.0}, "chips": [], "provider_hhi": None}

    rendered = render_json(answer(title="not in json", data=data))

    assert json.loads(rendered) == data


def test_json_is_indented_and_ends_with_a_newline() -> None:
    rendered = render_json(answer(data={"a": 1}))

    assert rendered == '{\n  "a": 1\n}\n'


def test_json_writes_dates_and_times_in_iso_format() -> None:
    data = {"day": date(2025, 12, 31), "at": datetime(2025, 12, 31, 23, 59, tzinfo=UTC)}

    rendered = json.loads(render_json(answer(data=data)))

    assert rendered == {"day": "2025-12-31", "at": "2025-12-31T23:59:00+00:00"}


def test_json_writes_other_values_as_text() -> None:
    uid = UUID("01860a45-ec00-762e-923b-cc7bfb659739")

    rendered = json.loads(render_json(answer(data={"event_id": uid})))

    assert rendered == {"event_id": "01860a45-ec00-762e-923b-cc7bfb659739"}


def test_json_keeps_non_ascii_text_readable() -> None:
    rendered = render_json(answer(data={"note": "Doña Ana — 1 GW"}))

    assert "Doña Ana — 1 GW" in rendered


# -- figures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mw", "text"),
    [
        (None, "n/a"),
        (0, "0 GW"),
        (245, "0.245 GW"),
        (1_000, "1 GW"),
        (1_500, "1.5 GW"),
        (26_080, "26.08 GW"),
        (300, "0.3 GW"),
    ],
)
def test_gw_shows_megawatts_as_gigawatts_without_trailing_zeros(
    mw: float | None, text: str
) -> None:
    assert gw(mw) == text


def test_gw_rounds_half_up_as_its_docstring_example_says() -> None:
    assert gw(11_045) == "11.05 GW"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "n/a"),
        (0, "$0"),
        (401e9, "$401B"),
        (1.4e12, "$1.4T"),
        (830e6, "$830M"),
        (22.4e9, "$22.4B"),
        (1_250, "$1,250"),
    ],
)
def test_usd_shows_dollars_in_millions_billions_or_trillions(
    value: float | None, text: str
) -> None:
    assert usd(value) == text


@pytest.mark.parametrize(("a", "b", "text"), [(11, 22, "0.50x"), (0, 0, "—"), (1, 0, "∞")])
def test_ratio_shows_how_many_times_one_figure_is_another(a: float, b: float, text: str) -> None:
    assert ratio(a, b) == text


@pytest.mark.parametrize(("mw", "text"), [(1_500, "+1.5 GW"), (-245, "-0.245 GW"), (0, "±0 GW")])
def test_signed_gw_shows_the_direction_of_a_change(mw: float, text: str) -> None:
    assert signed_gw(mw) == text


def test_count_groups_thousands() -> None:
    assert (count(1_000_000), count(None)) == ("1,000,000", "n/a")
