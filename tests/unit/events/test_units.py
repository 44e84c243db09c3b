"""Unit tests of quantity parsing (events/units.py)."""

import pytest

from events.errors import QuantityParseError
from events.units import find_quantities, parse_count, parse_power_mw, parse_usd


@pytest.mark.parametrize(
    ("text", "mw"),
    [
        ("1 gigawatt", 1000),
        ("1.2 GW", 1200),
        ("750MW", 750),
        ("1.5 gigawatts", 1500),
        ("two gigawatts", 2000),
        ("10GW", 10000),
        ("500 megawatts", 500),
        ("1,920 megawatts", 1920),
    ],
)
def test_power_is_read_in_megawatts(text: str, mw: float) -> None:
    assert parse_power_mw(text) == mw


@pytest.mark.parametrize(
    ("text", "usd"),
    [
        ("$20 billion", 2e10),
        ("US$200 billion", 2e11),
        ("$1.4 trillion", 1.4e12),
        ("$830 million", 8.3e8),
        ("$11.9B", 1.19e10),
        ("$500M", 5e8),
        ("USD 5 billion", 5e9),
        ("20 billion dollars", 2e10),
    ],
)
def test_dollar_amounts_are_read_in_usd(text: str, usd: float) -> None:
    assert parse_usd(text) == pytest.approx(usd)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("one million TPUs", 1_000_000),
        ("500,000 chips", 500_000),
        ("400k GB200", 400_000),
        ("1M chips", 1_000_000),
        ("100,000 H100s", 100_000),
        ("18,000", 18_000),
    ],
)
def test_chip_counts_are_read_as_whole_numbers(text: str, count: int) -> None:
    assert parse_count(text) == count


@pytest.mark.parametrize("text", ["€5 billion", "5 billion euros", "£3 billion"])
def test_other_currencies_are_refused(text: str) -> None:
    with pytest.raises(QuantityParseError, match="US dollars"):
        parse_usd(text)


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_power_mw, "-5 MW"),
        (parse_power_mw, "2 million GW"),
        (parse_usd, "-$5 billion"),
        (parse_usd, "$900 trillion"),
        (parse_count, "-3 chips"),
    ],
)
def test_negative_or_absurd_values_are_refused(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QuantityParseError):
        parse(text)


@pytest.mark.parametrize(
    ("parse", "text"),
    [(parse_power_mw, "lots of power"), (parse_usd, "many dollars"), (parse_count, "chips")],
)
def test_unreadable_text_raises_a_parse_error(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QuantityParseError, match="Cannot read"):
        parse(text)


def test_find_quantities_reports_kind_value_offsets_and_qualifier() -> None:
    text = "Acme AI will rent up to 2 GW for about $30 billion, using 250,000 GPUs."

    found = find_quantities(text)

    assert [(q.kind, q.value, q.qualifier) for q in found] == [
        ("power_mw", 2000, "up to"),
        ("usd", 3e10, "about"),
        ("count", 250_000, None),
    ]
    assert all(text[q.start : q.end] == q.text for q in found)


def test_find_quantities_ignores_numbers_that_are_not_chips() -> None:
    found = find_quantities("The 1,200-acre site will employ 3,000 workers from 2027.")

    assert found == []
