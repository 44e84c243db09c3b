"""Finding a deal from what a user typed: its whole id, or a part of it that only one deal has;
a part that several deals have is refused with a few of them and how many there are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands.deals import resolve_deal_id
from bot.errors import UserInputError
from bot.services import Services, open_services
from tests.factories import make_deal_reported, manual_clock


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    opened = open_services(tmp_path / "lookup.duckdb", seed=False, clock=manual_clock())
    opened.store.append(
        [
            make_deal_reported(f"acme-cloud-{n}", lab="openai", capacity_mw=10)
            for n in ("east", "west", "north", "south", "central", "pacific")
        ]
        + [make_deal_reported("zeta-chips-2026", lab="meta", capacity_mw=5)]
    )
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("acme-cloud-west", "acme-cloud-west"),
        ("deal:ACME-cloud-west ", "acme-cloud-west"),
        ("pacific", "acme-cloud-pacific"),
        ("zeta", "zeta-chips-2026"),
    ],
)
def test_a_whole_id_or_a_part_only_one_deal_has_finds_the_deal(
    services: Services, typed: str, found: str
) -> None:
    assert resolve_deal_id(services.context, typed) == found


def test_a_part_several_deals_have_names_five_and_says_how_many(services: Services) -> None:
    with pytest.raises(UserInputError) as refused:
        resolve_deal_id(services.context, "acme-cloud")

    message = str(refused.value)
    assert "matches 6 deals" in message
    assert message.count("acme-cloud-") == 5  # the first five, in order
    assert "acme-cloud-central" in message and "acme-cloud-west" not in message


def test_a_text_no_deal_has_is_refused_by_name(services: Services) -> None:
    with pytest.raises(UserInputError, match="No deal is called 'nowhere'"):
        resolve_deal_id(services.context, "nowhere")
