"""The maintained read models (deal_state, deal_link_events) agree with a rebuild from the log and
with the fold of the log, after histories with back-dated events, retractions and links."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.envelope import NewEvent, RecordedEvent
from store.clock import ManualClock
from store.log import EventStore
from store.migrations import bundled_migrations, migrate
from store.projections import rebuild_projections
from store.queries import Position, Queries
from tests.factories import (
    JAN_01,
    make_capacity_online,
    make_counterparty_joined,
    make_deal_reported,
    make_deals_linked,
    make_retraction,
    make_source_added,
    make_status_change,
    make_terms_revision,
    manual_clock,
)

LABS = ["openai", "anthropic", "xai", "meta"]
READ_MODELS_MIGRATION = 4  # store/sql/004_read_models.sql
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


# -- the maintained read models against a rebuild and against the fold, after rich histories ---

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
RELATIONS = ["part_of", "supersedes", "overlaps"]
# deal_state with its bookkeeping lists as sets (their order depends on how they were built)
STATE_ROWS = (
    "SELECT * EXCLUDE (seqs, source_hashes), list_sort(seqs), list_sort(source_hashes) "
    "FROM deal_state ORDER BY deal_id"
)
LINK_ROWS = "SELECT * FROM deal_link_events ORDER BY event_id"


def draw_rich_event(
    data: st.DataObject, deals: dict[str, str], stored: list[RecordedEvent], retracted: set[str]
) -> NewEvent:
    """Any deal event, dated anywhere in 40 days (so often before the deal's latest event)."""
    when = JAN_01 + timedelta(days=data.draw(st.integers(0, 40), label="day"))
    choices = ["report"]
    if deals:
        choices += ["terms", "status", "status", "online", "joined", "source"]
    if len(deals) >= 2:
        choices += ["link", "link"]
    retractable = [
        e for e in stored if e.type != "EventRetracted" and str(e.event_id) not in retracted
    ]
    if retractable:
        choices += ["retract"]
    choice = data.draw(st.sampled_from(choices), label="event")
    if choice == "report":
        deal, lab = f"acme-deal-{len(deals)}", data.draw(st.sampled_from(LABS), label="lab")
        deals[deal] = lab
        return make_deal_reported(
            deal,
            lab=lab,
            occurred_at=when,
            kind=data.draw(st.sampled_from(["cloud_contract", "investment_for_compute"])),
            status=data.draw(st.sampled_from(STATUSES)),
            capacity_mw=data.draw(st.sampled_from([None, 100, 1_000, 2_500])),
            value_usd=data.draw(st.sampled_from([None, 2e9])),
            chips=data.draw(st.sampled_from([None, ("nvidia", "GB200", 10_000)])),
            counterparties=data.draw(
                st.sampled_from(
                    [
                        (),
                        (("google", "provider"),),
                        (("oracle", "landlord"), ("amazon", "provider")),
                    ]
                )
            ),
        )
    if choice == "retract":
        target = data.draw(st.sampled_from(retractable), label="target")
        retracted.add(str(target.event_id))
        return make_retraction(target, occurred_at=when)
    deal = data.draw(st.sampled_from(sorted(deals)), label="deal")
    if choice == "link":
        other = data.draw(st.sampled_from(sorted(set(deals) - {deal})), label="other")
        relation = data.draw(st.sampled_from(RELATIONS), label="relation")
        return make_deals_linked(deal, other, relation, occurred_at=when)
    if choice == "terms":
        return make_terms_revision(
            deal,
            occurred_at=when,
            capacity_mw=data.draw(st.sampled_from([500, 3_000])),
            counterparties=data.draw(st.sampled_from([None, (("coreweave", "landlord"),)])),
            value_usd=data.draw(st.sampled_from([None, 1e9])),
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
    return make_source_added(
        deal, source_url=data.draw(st.sampled_from(["seed:a.txt", "seed:b.txt"])), occurred_at=when
    )


def append_rich_history(data: st.DataObject, store: EventStore, clock: ManualClock) -> None:
    """Batches of 1-20 events (one event or many: both ways of refreshing), a day apart; the
    read models catch up after some batches (as a read between appends makes them) and fold
    the others together at the end."""
    deals: dict[str, str] = {}
    stored: list[RecordedEvent] = []
    retracted: set[str] = set()
    for _ in range(data.draw(st.integers(1, 8), label="batches")):
        size = data.draw(st.sampled_from([1, 1, 2, 20]), label="batch size")
        batch: list[NewEvent] = []
        for _ in range(size):
            event = draw_rich_event(data, deals, stored, retracted)
            if event.type == "EventRetracted" and any(
                e.event_id == event.payload.event_id
                for e in batch  # type: ignore[union-attr]
            ):
                continue  # an event cannot be retracted in the batch that adds it
            batch.append(event)
        clock.advance(timedelta(days=1))
        stored.extend(store.append(batch).recorded)
        if data.draw(st.booleans(), label="read after the batch"):
            store.catch_up()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_maintained_read_models_equal_a_rebuild_after_any_history(
    data: st.DataObject,
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        clock = manual_clock()
        with EventStore(Path(directory) / "log.duckdb", clock=clock) as store:
            append_rich_history(data, store, clock)
            maintained = rows(store, STATE_ROWS), rows(store, LINK_ROWS)
            folded_states = rows(store, FOLDED)

            cur = store.cursor()
            cur.execute("BEGIN TRANSACTION")
            rebuild_projections(cur)
            cur.execute("COMMIT")
            rebuilt = rows(store, STATE_ROWS), rows(store, LINK_ROWS)
            current = rows(store, CURRENT)

    assert maintained == rebuilt
    assert current == folded_states


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_positions_now_equal_positions_folded_from_the_log(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        clock = manual_clock()
        with EventStore(Path(directory) / "log.duckdb", clock=clock) as store:
            append_rich_history(data, store, clock)
            queries = Queries(store)

            now = queries.positions(LABS)
            folded = queries.positions(LABS, as_of=FAR_FUTURE)
            one_by_one = [queries.position(lab, as_of=FAR_FUTURE) for lab in LABS]
            deals_now = queries.counting(LABS)
            deals_folded = queries.counting(LABS, as_of=FAR_FUTURE)

    def same(p: list[Position]) -> list[dict[str, Any]]:
        return [x.model_dump(exclude={"as_of", "provider_hhi"}) for x in p]

    assert same(now) == same(folded) == same(one_by_one)
    assert [p.provider_hhi for p in now] == pytest.approx([p.provider_hhi for p in folded])
    assert deals_now == deals_folded


def test_a_database_made_before_the_maintained_tables_gets_them_from_its_log(
    tmp_path: Path,
) -> None:
    clock = manual_clock()
    with EventStore(tmp_path / "new.duckdb", clock=clock) as store:
        parent = make_deal_reported("acme-deal-1", lab="openai", capacity_mw=5_000)
        part = make_deal_reported("acme-deal-2", lab="meta", capacity_mw=800, status="loi")
        store.append([parent, part, make_deals_linked("acme-deal-2", "acme-deal-1", "part_of")])
        clock.advance(timedelta(days=1))
        store.append([make_retraction(part), make_capacity_online("acme-deal-1", 400)])
        expected = Queries(store).positions(LABS)
    # the same log in a database whose schema stops before the read models (migration 4)
    old = duckdb.connect(str(tmp_path / "old.duckdb"))
    migrate(old, [m for m in bundled_migrations() if m.version < READ_MODELS_MIGRATION])
    old.execute(f"ATTACH '{tmp_path / 'new.duckdb'}' AS new (READ_ONLY)")
    old.execute("INSERT INTO events SELECT * FROM new.events")
    old.close()

    with EventStore(tmp_path / "old.duckdb", clock=clock) as store:
        upgraded = Queries(store).positions(LABS)

    assert upgraded == expected
    assert upgraded[0].capacity_mw.operational == 400  # openai: acme-deal-1's 400 MW online


KILLED_WRITER = """
import os, signal, sys
from datetime import timedelta
from store.log import EventStore
from tests.factories import (
    make_capacity_online, make_deal_reported, make_deals_linked, make_status_change, manual_clock,
)
clock = manual_clock()
store = EventStore(sys.argv[1], clock=clock)
store.append([make_deal_reported("acme-deal-1", lab="openai", capacity_mw=5_000)])
store.cursor()  # a read: the read models catch up with the first deal
clock.advance(timedelta(days=1))
store.append([make_deal_reported("acme-deal-2", lab="meta", capacity_mw=800, status="loi")])
store.append([make_deals_linked("acme-deal-2", "acme-deal-1", "part_of")])
store.append(
    [make_status_change("acme-deal-1", "operational"), make_capacity_online("acme-deal-1", 400)]
)
os.kill(os.getpid(), signal.SIGKILL)  # no read, no close: the read models lag the log
"""


def test_a_store_killed_before_its_read_models_caught_up_folds_the_rest_when_it_opens(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    db = tmp_path / "killed.duckdb"
    run = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(db)], cwd=Path(__file__).parents[2], check=False
    )
    assert run.returncode == -9
    lagging = duckdb.connect(str(db))
    checkpoint = lagging.execute("SELECT seq FROM projection_checkpoint").fetchone()[0]
    head = lagging.execute("SELECT max(seq) FROM events").fetchone()[0]
    lagging.close()
    assert (checkpoint, head) == (1, 5)  # the kill left four events unfolded

    with EventStore(db, clock=manual_clock()) as store:
        assert store.projected == store.head == 5
        maintained = rows(store, STATE_ROWS), rows(store, LINK_ROWS)
        openai = Queries(store).position("openai")
        cur = store.cursor()
        cur.execute("BEGIN TRANSACTION")
        rebuild_projections(cur)
        cur.execute("COMMIT")
        assert maintained == (rows(store, STATE_ROWS), rows(store, LINK_ROWS))
    assert openai.capacity_mw.operational == 400
