"""Autocomplete of deal ids: the same choices as the obvious scan, in a few ms at 1M events."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.discord_app.index import MAX_CHOICES, DealIds, SearchIndex

deal_id = st.text(alphabet="abcx-019", min_size=1, max_size=12)


def obvious(ids: list[str], typed: str) -> list[str]:
    text = typed.strip().lower().removeprefix("deal:")
    hits = sorted(d for d in set(ids) if text in d)
    hits.sort(key=lambda d: not d.startswith(text))
    return hits[:MAX_CHOICES]


@given(st.lists(deal_id, max_size=80, unique=True), st.text(alphabet="abcx-019 :", max_size=4))
def test_choices_are_those_of_the_obvious_scan(ids: list[str], typed: str) -> None:
    index = SearchIndex(deals=DealIds.of(ids))

    assert index.match_deals(typed) == obvious(ids, typed)


def test_prefix_matches_come_first_then_the_others_in_order() -> None:
    index = SearchIndex(deals=DealIds.of(["b-colossus", "colossus-2", "a-colossus", "other"]))

    assert index.match_deals("coloss") == ["colossus-2", "a-colossus", "b-colossus"]
    assert index.match_deals("deal:other") == ["other"]
    assert index.match_deals("nothing") == []


def test_prefix_search_in_a_large_log_finds_the_first_matches_in_order() -> None:
    # A 1M-event log has about 211,000 deals; the index answers from sorted ids instead of a
    # scan on the event loop (its speed is measured by the interaction benchmark, not here).
    labs = ["openai", "anthropic", "xai", "meta", "google", "mistral", "ssi", "poolside"]
    index = SearchIndex(deals=DealIds.of([f"{labs[d % 8]}-{d:08d}" for d in range(211_000)]))

    assert index.match_deals("openai-0000000")[:2] == ["openai-00000000", "openai-00000008"]
    assert index.match_deals("no-such-deal") == []


# -- merging new ids (DealIds.with_ids): what sorting and joining anew would give


@given(
    st.lists(deal_id, max_size=60, unique=True),
    st.lists(deal_id, min_size=1, max_size=12),
    st.text(alphabet="abcx-019 :", max_size=4),
)
def test_merged_ids_are_offered_as_if_the_index_was_built_anew(
    ids: list[str], written: list[str], typed: str
) -> None:
    index = SearchIndex(deals=DealIds.of(ids).with_ids(written))

    assert index.deal_ids == sorted(set(ids) | set(written))  # each once
    assert index.match_deals(typed) == obvious(ids + written, typed)


def test_a_new_deal_is_offered_first_for_its_prefix_and_in_order_elsewhere() -> None:
    deals = DealIds.of(["b-colossus", "colossus-2", "other"]).with_ids(["colossus-1"])
    index = SearchIndex(deals=deals.with_ids(["a-colossus"]))

    assert index.match_deals("coloss") == ["colossus-1", "colossus-2", "a-colossus", "b-colossus"]
    assert index.match_deals("deal:colossus-1") == ["colossus-1"]


def test_ids_already_held_change_nothing() -> None:
    deals = DealIds.of(["acme-cloud-1", "other"])

    assert deals.with_ids(["other", "acme-cloud-1"]) is deals
