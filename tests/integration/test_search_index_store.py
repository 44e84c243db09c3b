"""Autocomplete's index after writes: merged from what was written (and what others wrote
meanwhile), it offers what reading the whole store anew would offer."""

from __future__ import annotations

import pytest

from bot.discord_app import index as index_module
from bot.discord_app.index import SearchIndex
from events.parties import default_registry
from store.log import EventStore
from tests.factories import make_deal_reported, make_retraction, make_source_added

REGISTRY = default_registry()


def read_anew(store: EventStore) -> SearchIndex:
    fresh = SearchIndex()
    fresh.refresh(store, REGISTRY)
    return fresh


def assert_same_choices(index: SearchIndex, store: EventStore) -> None:
    fresh = read_anew(store)
    assert index.deal_ids == fresh.deal_ids
    assert index.labs == fresh.labs
    assert index.seen == store.head


def test_a_write_is_offered_as_a_full_read_would_offer_it(store: EventStore) -> None:
    first = store.append([make_deal_reported("acme-cloud-1")]).recorded[0]
    index = read_anew(store)

    store.append([make_deal_reported("aws-build-1", lab="amazon"), make_retraction(first)])
    index.catch_up(store, REGISTRY)

    assert_same_choices(index, store)
    assert index.match_deals("acme") == ["acme-cloud-1"]  # retracted, still offered (as before)
    assert ("Amazon / AWS (amazon)", "amazon") in index.match_labs("amazon")


def test_what_others_wrote_meanwhile_is_read_with_the_next_write(store: EventStore) -> None:
    index = read_anew(store)
    store.append([make_deal_reported("api-deal-1", lab="amazon"), make_source_added("api-deal-1")])

    store.append([make_deal_reported("bot-deal-1")])
    index.catch_up(store, REGISTRY)

    assert_same_choices(index, store)
    assert index.match_deals("deal-1") == ["api-deal-1", "bot-deal-1"]


def test_many_events_by_others_are_caught_up_by_reading_anew(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "CATCH_UP_AT_MOST", 2)
    index = read_anew(store)
    store.append([make_deal_reported(f"api-deal-{n}") for n in range(5)])

    index.catch_up(store, REGISTRY)

    assert_same_choices(index, store)
    assert len(index.match_deals("api-deal")) == 5


def test_events_that_report_no_deal_leave_the_choices_as_they_are(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1")])
    index = read_anew(store)
    deals, labs = index.deals, index.labs

    store.append([make_source_added("acme-cloud-1")])
    index.catch_up(store, REGISTRY)

    assert index.deals is deals
    assert index.labs == labs
    assert index.seen == store.head
