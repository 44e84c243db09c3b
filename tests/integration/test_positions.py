"""Lab positions over a small hand-built ledger in a real DuckDB file: every bucket, the dollars,
retractions by known time, supersession and part_of links, HHI, chips, kinds and deal counts.

Every expected figure is worked out by hand in the test (the comments show the arithmetic); the
store under test is the one of tests/integration/conftest.py (clock at 2026-03-01).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store.clock import ManualClock
from store.log import EventStore
from store.queries import (
    Capacity,
    ChipTotal,
    DealCounting,
    KindTotal,
    Position,
    ProviderTotal,
    Queries,
)
from tests.factories import (
    make_capacity_online,
    make_deal_reported,
    make_deals_linked,
    make_retraction,
    make_status_change,
    make_terms_revision,
)

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def day(y: int, m: int, d: int) -> datetime:
    """Midnight UTC of a day: when the test's events happened."""
    return datetime(y, m, d, tzinfo=UTC)


def end_of(y: int, m: int, d: int) -> datetime:
    """The last instant of a day, as the commands pass as_of."""
    return day(y, m, d) + timedelta(days=1) - timedelta(microseconds=1)


def position(
    store: EventStore,
    lab: str,
    as_of: datetime | None = FAR_FUTURE,
    known_at: datetime | None = None,
) -> Position:
    return Queries(store).position(lab, as_of=as_of, known_at=known_at)


def counting(store: EventStore, deal_id: str, as_of: datetime | None = FAR_FUTURE) -> DealCounting:
    [row] = [d for d in Queries(store).counting(None, as_of=as_of) if d.deal_id == deal_id]
    return row


# -- the main ledger: one deal per bucket, all for meta ------------------------------------------


def append_meta_ledger(store: EventStore) -> None:
    """Ten deals of meta, one per case; the expected figures are in the tests below."""
    jan = day(2025, 1, 10)
    store.append(
        [
            # 1000 MW signed, then operational with 400 MW online: 400 operational + 600 contracted.
            make_deal_reported(
                "m-online",
                lab="meta",
                kind="cloud_contract",
                status="signed",
                counterparties=(("oracle", "provider"),),
                capacity_mw=1_000,
                value_usd=10e9,
                chips=("nvidia", "GB200", 100_000),
                occurred_at=jan,
            ),
            make_status_change("m-online", "operational", occurred_at=day(2025, 2, 1)),
            make_capacity_online("m-online", 400, occurred_at=day(2025, 2, 1)),
            # Operational from the start and no MW online figure: its 200 MW count whole.
            make_deal_reported(
                "m-running",
                lab="meta",
                kind="datacenter_lease",
                status="operational",
                counterparties=(("coreweave", "landlord"),),
                capacity_mw=200,
                occurred_at=jan,
            ),
            make_deal_reported(
                "m-signed",
                lab="meta",
                kind="cloud_contract",
                status="signed",
                counterparties=(("google", "provider"),),
                capacity_mw=300,
                value_usd=5e9,
                chips=("google", "TPU", 50_000),
                occurred_at=jan,
            ),
            make_deal_reported(
                "m-loi",
                lab="meta",
                kind="datacenter_lease",
                status="loi",
                counterparties=(("coreweave", "landlord"),),
                capacity_mw=150,
                value_usd=2e9,
                occurred_at=jan,
            ),
            make_deal_reported(
                "m-talks",
                lab="meta",
                kind="cloud_contract",
                status="negotiating",
                counterparties=(("amazon", "provider"),),
                capacity_mw=250,
                value_usd=3e9,
                occurred_at=jan,
            ),
            make_deal_reported(
                "m-rumor",
                lab="meta",
                kind="cloud_contract",
                status="rumored",
                counterparties=(("google", "provider"),),
                capacity_mw=500,
                value_usd=7e9,
                occurred_at=jan,
            ),
            make_deal_reported(
                "m-invest",
                lab="meta",
                kind="investment_for_compute",
                status="signed",
                counterparties=(("amazon", "investor"),),
                capacity_mw=None,
                value_usd=4e9,
                occurred_at=jan,
            ),
            make_deal_reported(
                "m-shelved",
                lab="meta",
                kind="cloud_contract",
                status="signed",
                counterparties=(("oracle", "provider"),),
                capacity_mw=900,
                value_usd=9e9,
                chips=("nvidia", "GB200", 70_000),
                occurred_at=jan,
            ),
            make_status_change("m-shelved", "shelved", occurred_at=day(2025, 3, 1)),
            make_deal_reported(
                "m-cancelled",
                lab="meta",
                kind="datacenter_lease",
                status="loi",
                counterparties=(("coreweave", "landlord"),),
                capacity_mw=100,
                value_usd=1e9,
                occurred_at=jan,
            ),
            make_status_change("m-cancelled", "cancelled", occurred_at=day(2025, 3, 1)),
            make_deal_reported(
                "m-chips",
                lab="meta",
                kind="chip_purchase",
                status="signed",
                counterparties=(("nvidia", "chip_supplier"),),
                capacity_mw=None,
                value_usd=1e9,
                chips=("nvidia", "GB200", 20_000),
                occurred_at=jan,
            ),
        ]
    )


@pytest.fixture
def meta_store(store: EventStore) -> EventStore:
    append_meta_ledger(store)
    return store


def test_capacity_buckets_follow_status_and_online_mw(meta_store: EventStore) -> None:
    p = position(meta_store, "meta")

    # operational: m-online's 400 MW online + m-running's 200 MW (operational, no online figure)
    # contracted:  m-online 1000 - 400 = 600, + m-signed 300 = 900
    # pipeline:    m-loi 150 + m-talks 250 = 400 (shelved m-shelved and cancelled m-cancelled: 0)
    # rumored:     m-rumor 500
    assert p.capacity_mw == Capacity(operational=600, contracted=900, pipeline=400, rumored=500)


def test_operational_status_without_online_figure_counts_the_whole_capacity(
    meta_store: EventStore,
) -> None:
    row = counting(meta_store, "m-running")

    assert (row.operational_mw, row.contracted_mw) == (200, 0)


def test_online_mw_split_a_deal_between_operational_and_contracted(meta_store: EventStore) -> None:
    before_online = counting(meta_store, "m-online", as_of=end_of(2025, 1, 31))
    after_online = counting(meta_store, "m-online")

    assert (before_online.operational_mw, before_online.contracted_mw) == (0, 1_000)
    assert (after_online.operational_mw, after_online.contracted_mw) == (400, 600)


def test_dollars_split_into_committed_pipeline_and_backing(meta_store: EventStore) -> None:
    p = position(meta_store, "meta")

    # committed (signed + operational, not investment/guarantee): m-online 10B + m-signed 5B
    #   + m-chips 1B = 16B (m-running has no value; m-shelved's 9B does not count)
    # pipeline (loi + negotiating): m-loi 2B + m-talks 3B = 5B (m-cancelled's 1B does not count)
    # backing (investment_for_compute): m-invest 4B only; rumored m-rumor's 7B counts nowhere
    assert (p.committed_usd, p.pipeline_usd, p.backing_usd) == (16e9, 5e9, 4e9)


def test_deal_count_leaves_out_shelved_and_cancelled_deals(meta_store: EventStore) -> None:
    p = position(meta_store, "meta")

    # 10 deals, minus m-shelved and m-cancelled
    assert p.deals == 8


def test_shelved_deal_counts_until_the_day_it_is_shelved(meta_store: EventStore) -> None:
    before = position(meta_store, "meta", as_of=end_of(2025, 2, 28))

    # m-shelved still signed on 2025-02-28: contracted 900 (as in the test above) + 900 = 1800;
    # m-cancelled still an LOI: pipeline 400 + 100 = 500; deals 8 + 2 = 10
    assert (before.capacity_mw.contracted, before.capacity_mw.pipeline, before.deals) == (
        1_800,
        500,
        10,
    )
    assert (before.committed_usd, before.pipeline_usd) == (16e9 + 9e9, 5e9 + 1e9)


def test_chips_are_summed_by_vendor_and_family_over_signed_and_operational_deals(
    meta_store: EventStore,
) -> None:
    p = position(meta_store, "meta")

    # nvidia GB200: m-online 100,000 + m-chips 20,000 (shelved m-shelved's 70,000 left out)
    # google TPU:   m-signed 50,000
    assert p.chips == [
        ChipTotal(vendor="nvidia", family="GB200", count=120_000, deals=2),
        ChipTotal(vendor="google", family="TPU", count=50_000, deals=1),
    ]


def test_by_kind_counts_deals_megawatts_and_dollars_that_stand(meta_store: EventStore) -> None:
    p = position(meta_store, "meta")

    assert p.by_kind == {
        # m-online 1000 + m-signed 300 + m-talks 250 + m-rumor 500 MW;
        # 10B + 5B + 3B (a rumour's 7B is in no dollar bucket)
        "cloud_contract": KindTotal(deals=4, capacity_mw=2_050, value_usd=18e9),
        # m-running 200 + m-loi 150 MW; m-loi's 2B
        "datacenter_lease": KindTotal(deals=2, capacity_mw=350, value_usd=2e9),
        "investment_for_compute": KindTotal(deals=1, capacity_mw=0, value_usd=4e9),
        "chip_purchase": KindTotal(deals=1, capacity_mw=0, value_usd=1e9),
    }


def test_by_provider_gives_committed_and_all_bucket_megawatts(meta_store: EventStore) -> None:
    p = position(meta_store, "meta")

    assert p.by_provider == {
        "oracle": ProviderTotal(committed_mw=1_000, total_mw=1_000, deals=1),  # m-online
        # m-signed 300 committed; + m-rumor 500 in all buckets
        "google": ProviderTotal(committed_mw=300, total_mw=800, deals=2),
        # m-running 200 committed (landlord); + m-loi 150
        "coreweave": ProviderTotal(committed_mw=200, total_mw=350, deals=2),
        "amazon": ProviderTotal(committed_mw=0, total_mw=250, deals=1),  # m-talks
    }


def test_provider_hhi_is_computed_over_committed_megawatts_of_two_providers(
    store: EventStore,
) -> None:
    store.append(
        [
            make_deal_reported(
                "h-oracle",
                lab="openai",
                counterparties=(("oracle", "provider"),),
                capacity_mw=750,
                occurred_at=day(2025, 1, 10),
            ),
            make_deal_reported(
                "h-coreweave",
                lab="openai",
                counterparties=(("coreweave", "provider"),),
                capacity_mw=250,
                occurred_at=day(2025, 1, 10),
            ),
            # pipeline capacity is not in the HHI
            make_deal_reported(
                "h-pipeline",
                lab="openai",
                status="loi",
                counterparties=(("google", "provider"),),
                capacity_mw=5_000,
                occurred_at=day(2025, 1, 10),
            ),
        ]
    )

    p = position(store, "openai")

    # shares of committed MW: oracle 750/1000 = 0.75, coreweave 250/1000 = 0.25
    # HHI = (0.75^2 + 0.25^2) * 10000 = (0.5625 + 0.0625) * 10000 = 6250
    assert p.provider_hhi == pytest.approx(6_250)


def test_provider_hhi_of_the_main_ledger(meta_store: EventStore) -> None:
    p = position(meta_store, "meta")

    # committed MW: oracle 1000, google 300, coreweave 200, amazon 0; total 1500
    # (1000/1500)^2 + (300/1500)^2 + (200/1500)^2 = 0.444444 + 0.04 + 0.017778 = 0.502222
    assert p.provider_hhi == pytest.approx(5_022.22, abs=0.01)


def test_position_before_the_first_event_is_all_zeros(meta_store: EventStore) -> None:
    p = position(meta_store, "meta", as_of=end_of(2025, 1, 9))

    assert p.capacity_mw == Capacity()
    assert (p.committed_usd, p.pipeline_usd, p.backing_usd, p.deals) == (0, 0, 0, 0)
    assert (p.by_kind, p.by_provider, p.chips, p.provider_hhi) == ({}, {}, [], None)


def test_position_now_equals_position_in_the_far_future_when_all_events_are_past(
    meta_store: EventStore,
) -> None:
    now = Queries(meta_store).position("meta")

    later = Queries(meta_store).position("meta", as_of=FAR_FUTURE)

    assert now.model_dump(exclude={"as_of", "provider_hhi"}) == later.model_dump(
        exclude={"as_of", "provider_hhi"}
    )
    assert now.provider_hhi == pytest.approx(later.provider_hhi)


def test_maintained_deal_table_equals_the_fold_of_the_log(
    meta_store: EventStore, clock: ManualClock
) -> None:
    revised = make_terms_revision("m-signed", capacity_mw=350, occurred_at=day(2025, 4, 1))
    meta_store.append([revised])
    clock.advance(timedelta(days=1))
    meta_store.append([make_retraction(revised)])
    cur = meta_store.cursor()

    current = cur.execute("SELECT * FROM deal_current ORDER BY deal_id").fetchall()
    folded = cur.execute("SELECT * FROM deal_states() ORDER BY deal_id").fetchall()

    assert current == folded
    assert len(current) == 10


# -- retractions: what counts depends on when the retraction was known ---------------------------


def test_retraction_hides_a_deal_only_when_known_at_is_after_it(
    store: EventStore, clock: ManualClock
) -> None:
    deal = make_deal_reported(
        "r-deal", lab="openai", capacity_mw=1_000, occurred_at=day(2025, 6, 1)
    )
    clock.set(day(2025, 6, 2))
    store.append([deal])
    clock.set(day(2025, 7, 1))
    store.append([make_retraction(deal, occurred_at=day(2025, 7, 1))])
    clock.set(day(2026, 3, 1))

    known_before = position(store, "openai", known_at=end_of(2025, 6, 30))
    known_after = position(store, "openai", known_at=end_of(2025, 7, 1))

    # Recorded 2025-06-02, retracted 2025-07-01: known on 30 June it stands, on 1 July it is gone
    assert (known_before.capacity_mw.contracted, known_before.deals) == (1_000, 1)
    assert (known_after.capacity_mw.contracted, known_after.deals) == (0, 0)


def test_retraction_hides_a_deal_even_for_a_valid_time_before_the_retraction(
    store: EventStore, clock: ManualClock
) -> None:
    deal = make_deal_reported(
        "r-deal", lab="openai", capacity_mw=1_000, occurred_at=day(2025, 6, 1)
    )
    store.append([deal])
    store.append([make_retraction(deal)])

    p = position(store, "openai", as_of=end_of(2025, 6, 15))

    assert p.capacity_mw.contracted == 0


def test_retracted_terms_revision_restores_the_earlier_terms(
    store: EventStore, clock: ManualClock
) -> None:
    store.append(
        [make_deal_reported("r-deal", lab="openai", capacity_mw=1_000, occurred_at=day(2025, 6, 1))]
    )
    revision = make_terms_revision("r-deal", capacity_mw=3_000, occurred_at=day(2025, 8, 1))
    store.append([revision])
    clock.advance(timedelta(days=2))
    store.append([make_retraction(revision)])

    known_before = position(store, "openai", known_at=day(2026, 3, 2))
    known_after = position(store, "openai")

    assert known_before.capacity_mw.contracted == 3_000
    assert known_after.capacity_mw.contracted == 1_000


def test_deal_recorded_after_known_at_does_not_count(store: EventStore, clock: ManualClock) -> None:
    clock.set(day(2025, 9, 1))
    store.append(
        [make_deal_reported("k-deal", lab="openai", capacity_mw=700, occurred_at=day(2025, 6, 1))]
    )

    p = position(store, "openai", as_of=end_of(2025, 12, 31), known_at=end_of(2025, 8, 31))

    assert (p.capacity_mw.contracted, p.deals) == (0, 0)


# -- supersedes ----------------------------------------------------------------------------------


@pytest.fixture
def superseded_store(store: EventStore) -> EventStore:
    store.append(
        [
            make_deal_reported(
                "s-old",
                lab="openai",
                counterparties=(("oracle", "provider"),),
                capacity_mw=1_000,
                value_usd=10e9,
                occurred_at=day(2025, 1, 10),
            ),
            make_deal_reported(
                "s-new",
                lab="openai",
                counterparties=(("coreweave", "provider"),),
                capacity_mw=600,
                value_usd=4e9,
                occurred_at=day(2025, 5, 1),
            ),
            make_deals_linked("s-new", "s-old", "supersedes", occurred_at=day(2025, 6, 1)),
        ]
    )
    return store


def test_superseded_deal_still_counts_before_the_link_date(superseded_store: EventStore) -> None:
    p = position(superseded_store, "openai", as_of=end_of(2025, 5, 31))

    # both stand: 1000 + 600 MW, 10B + 4B, 2 deals
    assert (p.capacity_mw.contracted, p.committed_usd, p.deals) == (1_600, 14e9, 2)


def test_superseded_deal_stops_counting_from_the_link_date(superseded_store: EventStore) -> None:
    p = position(superseded_store, "openai", as_of=end_of(2025, 6, 1))

    # only s-new: 600 MW, 4B, 1 deal; the supplier split no longer names oracle
    assert (p.capacity_mw.contracted, p.committed_usd, p.deals) == (600, 4e9, 1)
    assert list(p.by_provider) == ["coreweave"]
    assert counting(superseded_store, "s-old").superseded_by == "s-new"


# -- part_of -------------------------------------------------------------------------------------


def append_parent_and_part(
    store: EventStore, *, parent_mw: float | None, parent_usd: float | None
) -> None:
    """p-parent (5000 MW signed) and p-part (1200 MW, $40B, 300 MW online), linked 2025-03-01."""
    store.append(
        [
            make_deal_reported(
                "p-parent",
                lab="openai",
                kind="capacity_partnership",
                counterparties=(("oracle", "provider"),),
                capacity_mw=parent_mw,
                value_usd=parent_usd,
                occurred_at=day(2025, 1, 10),
            ),
            make_deal_reported(
                "p-part",
                lab="openai",
                kind="datacenter_lease",
                counterparties=(("oracle", "provider"),),
                capacity_mw=1_200,
                value_usd=40e9,
                occurred_at=day(2025, 2, 1),
            ),
            make_status_change("p-part", "operational", occurred_at=day(2025, 2, 15)),
            make_capacity_online("p-part", 300, occurred_at=day(2025, 2, 15)),
            make_deals_linked("p-part", "p-parent", "part_of", occurred_at=day(2025, 3, 1)),
        ]
    )


def test_part_of_an_active_parent_is_not_counted_twice(store: EventStore) -> None:
    append_parent_and_part(store, parent_mw=5_000, parent_usd=100e9)

    p = position(store, "openai")

    # capacity: the parent's 5000 only; the part's 300 MW online are the parent's online share:
    #   operational 300, contracted 5000 - 300 = 4700 (not 5000 + 1200 = 6200)
    # value: the parent's 100B only (not 140B); both deals still count as deals
    assert p.capacity_mw == Capacity(operational=300, contracted=4_700)
    assert (p.committed_usd, p.deals) == (100e9, 2)


def test_part_counts_on_its_own_before_the_link_date(store: EventStore) -> None:
    append_parent_and_part(store, parent_mw=5_000, parent_usd=100e9)

    p = position(store, "openai", as_of=end_of(2025, 2, 28))

    # unlinked: parent 5000 contracted; part 300 operational + 900 contracted; 100B + 40B
    assert p.capacity_mw == Capacity(operational=300, contracted=5_900)
    assert p.committed_usd == 140e9


def test_part_value_counts_when_the_parent_states_no_value(store: EventStore) -> None:
    append_parent_and_part(store, parent_mw=5_000, parent_usd=None)

    p = position(store, "openai")

    # measure by measure: capacity is in the parent (as above), the value only in the part: 40B
    assert p.capacity_mw == Capacity(operational=300, contracted=4_700)
    assert p.committed_usd == 40e9


def test_part_capacity_counts_when_the_parent_states_no_capacity(store: EventStore) -> None:
    append_parent_and_part(store, parent_mw=None, parent_usd=100e9)

    p = position(store, "openai")

    # the parent has no MW: the part's 300 operational + 900 contracted count; its 40B do not
    assert p.capacity_mw == Capacity(operational=300, contracted=900)
    assert p.committed_usd == 100e9


def test_part_of_a_shelved_parent_counts_on_its_own(store: EventStore) -> None:
    append_parent_and_part(store, parent_mw=5_000, parent_usd=100e9)
    store.append([make_status_change("p-parent", "shelved", occurred_at=day(2025, 9, 1))])

    before = position(store, "openai", as_of=end_of(2025, 8, 31))
    after = position(store, "openai")

    assert before.capacity_mw == Capacity(operational=300, contracted=4_700)
    # parent shelved: the part alone, 300 operational + 1200 - 300 = 900 contracted, 40B, 1 deal
    assert after.capacity_mw == Capacity(operational=300, contracted=900)
    assert (after.committed_usd, after.deals) == (40e9, 1)


def test_operational_part_without_online_figure_stays_operational_inside_its_parent(
    store: EventStore,
) -> None:
    store.append(
        [
            make_deal_reported(
                "o-parent", lab="openai", capacity_mw=5_000, occurred_at=day(2025, 1, 10)
            ),
            make_deal_reported(
                "o-part",
                lab="openai",
                status="operational",
                capacity_mw=1_200,
                occurred_at=day(2025, 2, 1),
            ),
            make_deals_linked("o-part", "o-parent", "part_of", occurred_at=day(2025, 3, 1)),
        ]
    )

    before_link = position(store, "openai", as_of=end_of(2025, 2, 28))
    after_link = position(store, "openai")

    # unlinked: the part runs, nothing says how much: 1200 operational; the parent 5000 contracted
    assert before_link.capacity_mw == Capacity(operational=1_200, contracted=5_000)
    # linked: the part's 1200 are the parent's online share: 1200 operational, 5000 - 1200 = 3800
    assert after_link.capacity_mw == Capacity(operational=1_200, contracted=3_800)


def test_part_chip_count_counts_only_when_the_parent_states_none(store: EventStore) -> None:
    store.append(
        [
            make_deal_reported(
                "c-parent",
                lab="openai",
                capacity_mw=2_000,
                chips=("nvidia", "GB200", None),
                occurred_at=day(2025, 1, 10),
            ),
            make_deal_reported(
                "c-part",
                lab="openai",
                capacity_mw=500,
                chips=("nvidia", "GB200", 40_000),
                occurred_at=day(2025, 1, 10),
            ),
            make_deals_linked("c-part", "c-parent", "part_of", occurred_at=day(2025, 1, 10)),
        ]
    )

    p = position(store, "openai")

    # the parent gives no chip count, so the part's 40,000 count; its 500 MW are in the 2000
    assert p.chips == [ChipTotal(vendor="nvidia", family="GB200", count=40_000, deals=2)]
    assert p.capacity_mw.contracted == 2_000


# -- links across labs: a lab's position reads the other lab's deals its deals are linked to ----


def append_cross_lab_part(store: EventStore) -> None:
    """openai's x-parent (5000 MW signed) and microsoft's x-part of it (1200 MW, 300 MW online),
    linked from microsoft's side on 2025-03-01."""
    store.append(
        [
            make_deal_reported(
                "x-parent", lab="openai", capacity_mw=5_000, occurred_at=day(2025, 1, 10)
            ),
            make_deal_reported(
                "x-part",
                lab="microsoft",
                status="operational",
                capacity_mw=1_200,
                occurred_at=day(2025, 2, 1),
            ),
            make_capacity_online("x-part", 300, occurred_at=day(2025, 2, 15)),
            make_deals_linked("x-part", "x-parent", "part_of", occurred_at=day(2025, 3, 1)),
        ]
    )


@pytest.mark.parametrize("as_of", [None, FAR_FUTURE], ids=["now", "folded"])
def test_part_of_another_labs_deal_counts_as_that_deals_online_share(
    store: EventStore, as_of: datetime | None
) -> None:
    append_cross_lab_part(store)

    openai = position(store, "openai", as_of=as_of)
    microsoft = position(store, "microsoft", as_of=as_of)

    # openai: x-parent's 5000 MW, of which x-part's 300 MW online are the online share:
    #   operational 300, contracted 5000 - 300 = 4700
    assert openai.capacity_mw == Capacity(operational=300, contracted=4_700)
    # microsoft: x-part's MW are inside x-parent (which states MW): none counted, still a deal
    assert (microsoft.capacity_mw, microsoft.deals) == (Capacity(), 1)


def test_part_of_another_labs_deal_counts_on_its_own_before_the_link(store: EventStore) -> None:
    append_cross_lab_part(store)

    openai = position(store, "openai", as_of=end_of(2025, 2, 28))
    microsoft = position(store, "microsoft", as_of=end_of(2025, 2, 28))

    # unlinked: openai 5000 contracted; microsoft 300 operational + 1200 - 300 = 900 contracted
    assert openai.capacity_mw == Capacity(contracted=5_000)
    assert microsoft.capacity_mw == Capacity(operational=300, contracted=900)


@pytest.mark.parametrize("as_of", [None, FAR_FUTURE], ids=["now", "folded"])
def test_a_deal_superseded_by_another_labs_deal_stops_counting(
    store: EventStore, as_of: datetime | None
) -> None:
    store.append(
        [
            make_deal_reported(
                "y-old", lab="openai", capacity_mw=1_000, occurred_at=day(2025, 1, 10)
            ),
            make_deal_reported(
                "y-new", lab="microsoft", capacity_mw=600, occurred_at=day(2025, 5, 1)
            ),
            make_deals_linked("y-new", "y-old", "supersedes", occurred_at=day(2025, 6, 1)),
        ]
    )

    before = position(store, "openai", as_of=end_of(2025, 5, 31))
    after = position(store, "openai", as_of=as_of)

    # y-old counts until microsoft's y-new supersedes it: 1000 MW and 1 deal, then nothing
    assert (before.capacity_mw.contracted, before.deals) == (1_000, 1)
    assert (after.capacity_mw.contracted, after.deals) == (0, 0)


@pytest.mark.parametrize("as_of", [None, FAR_FUTURE], ids=["now", "folded"])
def test_retracting_a_part_of_link_makes_the_part_count_on_its_own_again(
    store: EventStore, clock: ManualClock, as_of: datetime | None
) -> None:
    append_parent_and_part(store, parent_mw=5_000, parent_usd=100e9)
    [link] = [e for e in store.read_stream("deal:p-part") if e.type == "DealsLinked"]
    clock.advance(timedelta(days=1))

    store.append([make_retraction(link, "the part belongs to another build-out")])
    p = position(store, "openai", as_of=as_of)

    # as before the link (test_part_counts_on_its_own_before_the_link): parent 5000 contracted;
    # part 300 operational + 900 contracted; 100B + 40B
    assert p.capacity_mw == Capacity(operational=300, contracted=5_900)
    assert p.committed_usd == 140e9
