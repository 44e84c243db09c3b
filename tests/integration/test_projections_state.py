"""The maintained deal_current table agrees with a full fold of the log, retractions included."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.envelope import NewEvent, RecordedEvent
from store.log import EventStore
from store.projections import rebuild_projections
from tests.factories import (
    JAN_01,
    make_capacity_online,
    make_counterparty_joined,
    make_deal_reported,
    make_retraction,
    make_source_added,
    make_status_change,
    make_terms_revision,
    manual_clock,
)

LABS = ["openai", "anthropic", "xai", "meta"]
PROVIDERS = ["google", "amazon", "oracle", "coreweave", "microsoft"]
ROLES = ["provider", "landlord", "financier", "chip_supplier"]
STATUSES = ["rumored", "negotiating", "loi", "signed", "operational", "shelved", "cancelled"]

CURRENT = "SELECT * FROM deal_current WHERE events IS NOT NULL ORDER BY deal_id"
FOLDED = "SELECT * FROM deal_states() ORDER BY deal_id"


@contextmanager
def fresh_store() -> Iterator[EventStore]:
    with (
        tempfile.TemporaryDirectory() as directory,
        EventStore(Path(directory) / "log.duckdb", clock=manual_clock()) as store,
    ):
        yield store


def rows(store: EventStore, sql: str) -> list[tuple[Any, ...]]:
    return store.cursor().execute(sql).fetchall()


def draw_event(
    data: st.DataObject,
    deals: dict[str, str],
    stored: list[RecordedEvent],
    retracted: set[str],
    batch: list[NewEvent],
) -> NewEvent | None:
    when = JAN_01 + timedelta(days=data.draw(st.integers(0, 40), label="day"))
    choices = ["report"]
    if deals:
        choices += ["terms", "status", "online", "joined", "source"]
    retractable = [
        e
        for e in stored
        if e.type != "EventRetracted"
        and str(e.event_id) not in retracted
        and e.stream_id.startswith("deal:")
    ]
    if retractable:
        choices += ["retract", "retract"]
    choice = data.draw(st.sampled_from(choices), label="event")
    if choice == "report":
        deal, lab = f"acme-deal-{len(deals)}", data.draw(st.sampled_from(LABS))
        deals[deal] = lab
        return make_deal_reported(
            deal,
            lab=lab,
            occurred_at=when,
            status=data.draw(st.sampled_from(STATUSES)),
            capacity_mw=data.draw(st.sampled_from([None, 100, 1_000, 2_500])),
            counterparties=((data.draw(st.sampled_from(PROVIDERS)), "provider"),),
        )
    if choice == "retract":
        target = data.draw(st.sampled_from(retractable), label="target")
        retracted.add(str(target.event_id))
        return make_retraction(target, occurred_at=when)
    deal = data.draw(st.sampled_from(sorted(deals)), label="deal")
    if choice == "terms":
        party = data.draw(st.sampled_from(PROVIDERS))
        return make_terms_revision(
            deal,
            occurred_at=when,
            capacity_mw=data.draw(st.sampled_from([None, 500, 3_000])),
            counterparties=data.draw(st.sampled_from([None, ((party, "landlord"),)])),
            value_usd=1e9,
        )
    if choice == "status":
        return make_status_change(deal, data.draw(st.sampled_from(STATUSES)), occurred_at=when)
    if choice == "online":
        return make_capacity_online(
            deal, data.draw(st.sampled_from([None, 50, 400])), occurred_at=when
        )
    if choice == "joined":
        return make_counterparty_joined(
            deal,
            data.draw(st.sampled_from(PROVIDERS)),
            data.draw(st.sampled_from(ROLES)),
            occurred_at=when,
        )
    return make_source_added(deal, source_url=f"seed:{deal}-{len(batch)}.txt", occurred_at=when)


def append_random_history(data: st.DataObject, store: EventStore) -> None:
    deals: dict[str, str] = {}
    stored: list[RecordedEvent] = []
    retracted: set[str] = set()
    for _ in range(data.draw(st.integers(1, 6), label="batches")):
        batch: list[NewEvent] = []
        for _ in range(data.draw(st.integers(1, 5), label="batch size")):
            event = draw_event(data, deals, stored, retracted, batch)
            if event is not None:
                batch.append(event)
        stored.extend(store.append(batch).recorded)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_maintained_deal_state_equals_a_full_fold_of_the_log(data: st.DataObject) -> None:
    with fresh_store() as store:
        append_random_history(data, store)

        current, folded = rows(store, CURRENT), rows(store, FOLDED)

    assert current == folded


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rebuilding_the_deal_state_from_zero_changes_nothing(data: st.DataObject) -> None:
    with fresh_store() as store:
        append_random_history(data, store)
        before = rows(store, "SELECT * FROM deal_current ORDER BY deal_id")

        rebuild_projections(store.cursor())

        after = rows(store, "SELECT * FROM deal_current ORDER BY deal_id")
    assert after == before


def test_a_deal_whose_every_event_is_retracted_stays_as_unreported(tmp_path: Path) -> None:
    with EventStore(tmp_path / "log.duckdb", clock=manual_clock()) as store:
        reported = make_deal_reported("acme-cloud-1")
        store.append([reported])

        store.append([make_retraction(reported)])

        row = rows(store, "SELECT deal_id, reported, events FROM deal_current")
        folded = rows(store, FOLDED)
    assert row == [("acme-cloud-1", False, None)]
    assert folded == []


def test_retracting_a_deal_report_removes_the_deal_from_the_deals_view(tmp_path: Path) -> None:
    with EventStore(tmp_path / "log.duckdb", clock=manual_clock()) as store:
        kept, wrong = make_deal_reported("acme-cloud-1"), make_deal_reported("acme-cloud-2")
        store.append([kept, wrong, make_status_change("acme-cloud-2", "operational")])

        store.append([make_retraction(wrong, "no such deal was signed")])

        deals = rows(store, "SELECT deal_id FROM deals ORDER BY deal_id")
    assert deals == [("acme-cloud-1",)]


def test_retracting_a_terms_revision_restores_the_earlier_terms(tmp_path: Path) -> None:
    with EventStore(tmp_path / "log.duckdb", clock=manual_clock()) as store:
        store.append([make_deal_reported("acme-cloud-1", capacity_mw=1_000)])
        revision = make_terms_revision(
            "acme-cloud-1", capacity_mw=10_000, occurred_at=JAN_01 + timedelta(days=20)
        )
        store.append([revision])

        store.append([make_retraction(revision, "GW and MW mixed up")])

        capacity = rows(store, "SELECT capacity_mw FROM deals")
    assert capacity == [(1_000.0,)]


def test_a_late_recorded_event_with_an_earlier_valid_time_does_not_override_later_news(
    tmp_path: Path,
) -> None:
    with EventStore(tmp_path / "log.duckdb", clock=manual_clock()) as store:
        store.append(
            [
                make_deal_reported(
                    "acme-cloud-1", status="loi", occurred_at=JAN_01 + timedelta(days=1)
                )
            ]
        )
        store.append(
            [make_status_change("acme-cloud-1", "signed", occurred_at=JAN_01 + timedelta(days=30))]
        )

        store.append(
            [
                make_status_change(
                    "acme-cloud-1", "negotiating", occurred_at=JAN_01 + timedelta(days=10)
                )
            ]
        )

        status = rows(store, "SELECT status FROM deal_current")
    assert status == [("signed",)]
