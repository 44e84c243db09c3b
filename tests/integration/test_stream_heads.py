"""Stream versions and deal labs come from a compact snapshot of the read models and the writes
since, not from dicts of every stream: they must stay exact while the read models lag the log,
after a reopen, after an import, and when they are read with events the read models have not
folded (store/stream_heads.py)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from store import stream_heads
from store.clock import ManualClock
from store.errors import ConcurrencyError
from store.log import EventStore, connect
from store.rows import stage_events
from store.stream_heads import StreamHeads
from tests.factories import (
    make_candidate_proposed,
    make_deal_reported,
    make_retraction,
    make_source_added,
    make_status_change,
)

LABS = {"acme-1": "meta", "acme-2": "xai", "acme-3": "google"}


def fill(store: EventStore) -> None:
    """Three deals, a retraction, a candidate: then closed, so the read models are current."""
    store.append([make_deal_reported(d, lab=lab) for d, lab in LABS.items()])
    status = store.append([make_status_change("acme-1")]).recorded[0]
    store.append([make_retraction(status)])
    store.append([make_candidate_proposed("c0ffee")])


def truth(store: EventStore) -> dict[str, int]:
    """Every stream's version, counted from the events themselves."""
    return dict(Counter(e.stream_id for e in store.read_all()))


def test_versions_labs_and_deals_are_exact_while_the_read_models_lag(
    db_path: Path, clock: ManualClock
) -> None:
    with EventStore(db_path, clock=clock) as store:
        fill(store)
    with EventStore(db_path, clock=clock) as store:
        store.append([make_source_added("acme-2", source_url="https://news.example.com/a")])
        store.append([make_deal_reported("acme-4", lab="mistral")])
        store.append([make_status_change("acme-4"), make_candidate_proposed("c0ffee2")])

        assert store.projected < store.head  # nothing has caught the read models up yet
        versions = {s: store.stream_version(s) for s in truth(store)}
        labs = {d: store.lab_of(d) for d in (*LABS, "acme-4", "acme-9")}
        deals = store.deal_ids()

        assert versions == truth(store)
        assert store.stream_version("deal:acme-9") == 0
        assert labs == {**LABS, "acme-4": "mistral", "acme-9": None}
        assert deals == ["acme-1", "acme-2", "acme-3", "acme-4"]


def test_a_reopened_store_knows_every_version_and_lab(db_path: Path, clock: ManualClock) -> None:
    with EventStore(db_path, clock=clock) as store:
        fill(store)
        store.append([make_status_change("acme-3")])
        expected = truth(store)

    with EventStore(db_path, clock=clock) as store:
        assert {s: store.stream_version(s) for s in expected} == expected
        assert {d: store.lab_of(d) for d in LABS} == LABS
        store.append([make_status_change("acme-3", expected_version=expected["deal:acme-3"])])
        with pytest.raises(ConcurrencyError):
            store.append([make_status_change("acme-2", expected_version=5)])


def test_heads_taken_while_the_read_models_lag_count_the_events_they_lack(
    db_path: Path, clock: ManualClock
) -> None:
    """What a store reads when it is opened, or reloads after meeting a write it did not make,
    before the read models have caught up."""
    with EventStore(db_path, clock=clock) as store:
        fill(store)
    with EventStore(db_path, clock=clock) as store:
        store.append([make_deal_reported("acme-4", lab="mistral"), make_status_change("acme-1")])
        store.append([make_source_added("acme-4", source_url="https://news.example.com/b")])
        assert store.projected < store.head
        expected = truth(store)
        con = connect(db_path)  # the same database, as a second connection of this process
        heads = StreamHeads(con.cursor(), cursor=con.cursor, folded=lambda: 0)

        one_by_one = {s: heads.head_of(s) for s in expected}
        at_once = heads.heads_of([*expected, "deal:acme-9", "candidate:none"])
        con.close()

    assert {s: v for s, (v, _) in one_by_one.items()} == expected
    assert at_once == {**one_by_one, "deal:acme-9": (0, None), "candidate:none": (0, None)}
    assert {s: lab for s, (_, lab) in one_by_one.items() if lab} == {
        **{f"deal:{d}": lab for d, lab in LABS.items()},
        "deal:acme-4": "mistral",
    }


def test_after_a_large_import_the_heads_are_read_again(
    db_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import folds its own events; past a size the store reads the heads again from the
    read models instead of holding every stream it wrote."""
    monkeypatch.setattr(stream_heads, "RETAKE_AFTER_STREAMS", 1)
    with EventStore(db_path, clock=clock) as store:
        fill(store)
        assert store.stream_version("deal:acme-2") == 1  # the heads are read before the import
        store.import_staged(
            stage_events(
                [
                    make_status_change("acme-2"),
                    make_deal_reported("acme-5", lab="ssi"),
                    make_status_change("acme-5"),
                    make_candidate_proposed("c0ffee3"),
                ]
            )
        )
        store.append([make_status_change("acme-5", expected_version=2)])

        assert {s: store.stream_version(s) for s in truth(store)} == truth(store)
        assert (store.lab_of("acme-5"), store.lab_of("acme-2")) == ("ssi", "xai")


def test_readers_on_other_threads_see_every_append_they_waited_for(
    db_path: Path, clock: ManualClock
) -> None:
    """A reader asks while the writer appends and the read models catch up; after an append
    returns, every read of its stream answers at least its version."""
    with EventStore(db_path, clock=clock) as store:
        fill(store)
        done = threading.Event()
        seen: list[tuple[int, int]] = []  # (version acknowledged before the read, read)
        acked = {"v": store.stream_version("deal:acme-2")}

        def read() -> None:
            while not done.is_set():
                before = acked["v"]
                seen.append((before, store.stream_version("deal:acme-2")))

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for n in range(60):
                result = store.append([make_status_change("acme-2", expected_version=acked["v"])])
                acked["v"] = result.recorded[0].version
                if n % 7 == 0:
                    store.catch_up()
        finally:
            done.set()
            reader.join()

        assert store.stream_version("deal:acme-2") == acked["v"] == 61
        assert all(read >= before for before, read in seen)
