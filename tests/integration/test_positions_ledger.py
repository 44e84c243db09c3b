"""Positions over the bundled reference ledger, against figures worked out by hand from
/work/shared/reference/deals.jsonl and links.jsonl (line numbers in the comments are 1-based).

The ledger is bundled with the package, so the hand-computed figures are asserted always; the
comparison with an independent reading of the reference files is skipped when they are absent.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.services import seed_ledger
from store.clock import ManualClock
from store.log import EventStore
from store.queries import Capacity, Queries

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "deals.jsonl").is_file(), reason="shared/reference is not available"
)
# Later than the newest ledger event (2026-07-04), so the whole ledger is in the past.
CLOCK_AT = datetime(2026, 11, 1, tzinfo=UTC)


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC) + timedelta(days=1) - timedelta(microseconds=1)


@pytest.fixture(scope="module")
def ledger_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    path = tmp_path_factory.mktemp("ledger") / "ledger.duckdb"
    with EventStore(path, clock=ManualClock(CLOCK_AT)) as store:
        seed_ledger(store)
        yield store


@pytest.fixture(scope="module")
def queries(ledger_store: EventStore) -> Queries:
    return Queries(ledger_store)


def test_anthropic_contracted_megawatts_now(queries: Queries) -> None:
    p = queries.position("anthropic")

    # Anthropic's signed deals with an MW figure (deals.jsonl lines 7, 9, 12, 14-15, 16, 17-18):
    #   google-tpu-1m 1000 + microsoft-nvidia 1000 + hut8-river-bend 245 (part of the Fluidstack
    #   build-out, which states no MW: links.jsonl line 2) + google-broadcom-tpu-2026 3500
    #   + amazon-5gw 5000 + spacex-colossus1 300 = 11045
    # Project Rainier (lines 4-5) is operational with no MW and part of amazon-5gw (links line 3):
    #   nothing online to count. The lease LOIs (line 19, 1000 MW) are pipeline.
    assert p.capacity_mw == Capacity(operational=0, contracted=11_045, pipeline=1_000, rumored=0)


def test_anthropic_deal_count_and_backing_now(queries: Queries) -> None:
    p = queries.position("anthropic")

    # 13 deals (lines 1-19), none shelved; backing = the two investments tied to compute:
    #   google 0.4B (line 1) + amazon 8B (line 3, cumulative) = 8.4B
    assert (p.deals, p.backing_usd) == (13, 8.4e9)


def test_xai_operational_megawatts_with_colossus_2_gigawatt_online(queries: Queries) -> None:
    p = queries.position("xai")

    # Colossus 1 (lines 66-72): operational, 300 MW since 2026-05-06, no MW-online figure: 300
    # Colossus 2 (lines 74-77): 2000 MW planned, 1000 MW reported online 2026-01-17: 1000
    #   operational, 1000 contracted
    # contracted: 1000 + Humain 500 (line 79) + gas turbines 1900 (line 80) = 3400
    # the Valor SPV (line 78, negotiating) has no MW and is part of Colossus 2 (links line 11)
    assert p.capacity_mw == Capacity(operational=1_300, contracted=3_400, pipeline=0, rumored=0)


def test_xai_oracle_deal_is_out_from_its_shelving_and_supersession(queries: Queries) -> None:
    before = queries.position("xai", as_of=end_of(2024, 7, 8))
    after = queries.position("xai", as_of=end_of(2024, 7, 9))

    # 2024-07-08: xai-oracle-cloud (negotiating, line 64) and Colossus 1 (line 67): 2 deals;
    # 2024-07-09: Oracle shelved (line 65) and superseded by Colossus 1 (links line 14): 1 deal
    assert (before.deals, after.deals) == (2, 1)
    assert (before.pipeline_usd, after.pipeline_usd) == (10e9, 0)


def test_openai_deal_count_at_the_end_of_2025(queries: Queries) -> None:
    p = queries.position("openai", as_of=end_of(2025, 12, 31))

    # OpenAI deals first reported by 2025-12-31 (lines 20-59): 21 (cerebras, line 61, and ohio,
    # line 62, come in 2026); none was shelved yet (nvidia-10gw on 2026-01-31, the JV on
    # 2026-02-23, abilene-expansion on 2026-03-06); parts count as deals
    assert p.deals == 21


def test_openai_deal_count_now_leaves_out_the_three_shelved(queries: Queries) -> None:
    p = queries.position("openai")

    # 23 deals, minus the JV, nvidia-10gw and abilene-expansion (shelved): 20
    assert p.deals == 20


def test_stargate_jv_absorbs_its_parts_until_it_is_shelved(queries: Queries) -> None:
    p = queries.position("openai", as_of=end_of(2026, 2, 22))

    # Signed or operational, not shelved, not inside an active parent with an MW figure:
    #   JV 8000 (line 28) + UAE 1000 (38) + Norway 230 (42) + India 100 (44, signed 2026-02-19)
    #   + AMD 6000 (54) + Broadcom 10000 (57) + Cerebras 750 (61) = 26080
    #   Abilene 1200, Oracle 4.5 GW, SoftBank sites 1500 are parts of the JV (links 4, 5, 8);
    #   Michigan 1000 is part of the Oracle deal (links 10); AWS has no MW until 2026-02-27.
    # pipeline: Argentina 500 (line 55); abilene-expansion 600 is part of the JV (links 6)
    assert p.capacity_mw.operational + p.capacity_mw.contracted == 26_080
    assert p.capacity_mw.pipeline == 500


def test_oracle_deal_counts_on_its_own_after_the_jv_is_shelved(queries: Queries) -> None:
    p = queries.position("openai", as_of=end_of(2026, 2, 23))

    # JV shelved (line 29): its 8000 go; its parts count on their own:
    #   26080 - 8000 + Oracle 4500 + SoftBank sites 1500 + Abilene 1200 = 25280 committed,
    #   of which Abilene's 1200 operational (operational, no MW-online figure: counts whole)
    # Michigan stays inside the still active Oracle deal (links 10)
    # pipeline: Argentina 500 + abilene-expansion 600 (negotiating until 2026-03-06) = 1100
    assert p.capacity_mw == Capacity(operational=1_200, contracted=24_080, pipeline=1_100)
    oracle, michigan = (
        next(d for d in queries.counting(["openai"], as_of=end_of(2026, 2, 23)) if d.deal_id == i)
        for i in ("openai-oracle-4_5gw-2025", "openai-stargate-michigan-2025")
    )
    assert (oracle.counted_mw, oracle.capacity_in_parent) == (4_500, False)
    assert (michigan.counted_mw, michigan.parent_deal) == (0, "openai-oracle-4_5gw-2025")


def test_oracle_deal_value_counts_once_the_jv_is_shelved(queries: Queries) -> None:
    before = queries.position("openai", as_of=end_of(2026, 2, 22))
    after = queries.position("openai", as_of=end_of(2026, 2, 23))

    # Before: JV 500B stands and covers Oracle 300B, CoreWeave 22.4B and Abilene 40B.
    # After: -500B + 300B + 22.4B + 40B = -137.6B
    assert before.committed_usd - after.committed_usd == pytest.approx(137.6e9)


def test_openai_operational_capacity_does_not_vanish_when_the_jv_gets_a_figure(
    queries: Queries,
) -> None:
    before = queries.position("openai", as_of=end_of(2025, 9, 22))
    after = queries.position("openai", as_of=end_of(2025, 9, 23))

    # Abilene (lines 33-37) is live from 2025-07-22 and stays live; on 2025-09-23 the JV it is
    # part of states ~7 GW (line 27). Its 1.2 GW should then be the JV's online share.
    assert before.capacity_mw.operational == 1_200
    assert after.capacity_mw.operational == 1_200


def test_maintained_deal_table_equals_the_fold_of_the_ledger(ledger_store: EventStore) -> None:
    cur = ledger_store.cursor()

    current = cur.execute("SELECT * FROM deal_current ORDER BY deal_id").fetchall()
    folded = cur.execute("SELECT * FROM deal_states() ORDER BY deal_id").fetchall()

    assert current == folded
    assert len(current) == 68  # the reference README: 68 deals


def test_position_now_equals_position_in_the_far_future(queries: Queries) -> None:
    now = queries.positions()

    later = queries.positions(as_of=datetime(2100, 1, 1, tzinfo=UTC))

    # The HHI is a float sum whose order DuckDB's parallel aggregation does not fix: it may
    # differ in the last bit between two runs of the same query, so it is compared apart.
    assert [p.model_dump(exclude={"as_of", "provider_hhi"}) for p in now] == [
        p.model_dump(exclude={"as_of", "provider_hhi"}) for p in later
    ]
    assert [p.provider_hhi for p in now] == pytest.approx([p.provider_hhi for p in later])


# -- an independent reading of the reference files ----------------------------------------------


def reference_totals(
    deals: list[dict[str, Any]], links: list[dict[str, Any]], on: str
) -> dict[str, dict[str, float]]:
    """Per lab on day `on`, by the README's rules: each deal's latest snapshot, links from their
    date, part_of measure by measure while the parent is active, supersedes from the link date.

    Committed MW (operational + contracted) is compared, not the split: deals.jsonl gives the
    online MW only in notes.
    """
    snap = {d["deal"]: d for d in deals if d["date"] <= on}  # lines are in date order per deal
    standing = [link for link in links if link["date"] <= on]
    superseded = {link["other"] for link in standing if link["relation"] == "supersedes"}

    def ended(state: dict[str, Any]) -> bool:
        return state["status"] in ("shelved", "cancelled")

    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for deal_id, s in snap.items():
        if ended(s) or deal_id in superseded:
            continue
        t = totals[s["lab"]]
        t["deals"] += 1
        parents = [
            snap[link["other"]]
            for link in standing
            if link["relation"] == "part_of"
            and link["deal"] == deal_id
            and link["other"] in snap
            and not ended(snap[link["other"]])
        ]
        mw = 0 if any(p["capacity_mw"] is not None for p in parents) else s["capacity_mw"] or 0
        usd = 0 if any(p["value_usd"] is not None for p in parents) else s["value_usd"] or 0
        backing = s["kind"] in ("investment_for_compute", "guarantee")
        if s["status"] in ("signed", "operational"):
            t["committed_mw"] += mw
            t["backing_usd" if backing else "committed_usd"] += usd
        elif s["status"] in ("loi", "negotiating"):
            t["pipeline_mw"] += mw
            t["pipeline_usd"] += 0 if backing else usd
        elif s["status"] == "rumored":
            t["rumored_mw"] += mw
    return totals


@needs_reference
def test_positions_match_the_reference_files_on_every_event_date(queries: Queries) -> None:
    deals = [
        json.loads(line)
        for line in (REFERENCE / "deals.jsonl").read_text().splitlines()
        if line.strip()
    ]
    links = [
        json.loads(line)
        for line in (REFERENCE / "links.jsonl").read_text().splitlines()
        if line.strip()
    ]
    days = sorted({d["date"] for d in deals} | {link["date"] for link in links})

    mismatches = []
    for on in days:
        expected = reference_totals(deals, links, on)
        got = {p.lab: p for p in queries.positions(as_of=end_of(*map(int, on.split("-"))))}
        for lab in sorted(set(expected) | set(got)):
            e = expected.get(lab, {})
            p = got.get(lab)
            actual = (
                {
                    "deals": p.deals,
                    "committed_mw": p.capacity_mw.operational + p.capacity_mw.contracted,
                    "pipeline_mw": p.capacity_mw.pipeline,
                    "rumored_mw": p.capacity_mw.rumored,
                    "committed_usd": p.committed_usd,
                    "pipeline_usd": p.pipeline_usd,
                    "backing_usd": p.backing_usd,
                }
                if p
                else {}
            )
            for key in (
                "deals",
                "committed_mw",
                "pipeline_mw",
                "rumored_mw",
                "committed_usd",
                "pipeline_usd",
                "backing_usd",
            ):
                if abs(e.get(key, 0) - actual.get(key, 0)) > 1e-3:
                    mismatches.append((on, lab, key, e.get(key, 0), actual.get(key, 0)))

    assert len(days) > 80
    assert mismatches == []


@needs_reference
def test_latest_deal_counts_match_the_reference_readme_table(queries: Queries) -> None:
    deals = [
        json.loads(line)
        for line in (REFERENCE / "deals.jsonl").read_text().splitlines()
        if line.strip()
    ]
    latest = {d["deal"]: d for d in deals}
    expected: dict[str, int] = defaultdict(int)
    for d in latest.values():
        if d["status"] not in ("shelved", "cancelled"):
            expected[d["lab"]] += 1

    got = {p.lab: p.deals for p in queries.positions()}

    # README "Counts": e.g. anthropic 13, openai 23 - 3 shelved, xai 7 - 1, microsoft 8 - 1
    assert got == dict(expected)
    assert (got["anthropic"], got["openai"], got["xai"], got["microsoft"]) == (13, 20, 6, 7)
