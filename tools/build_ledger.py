"""Build events/data/ledger.jsonl from the curated reference set (../shared/reference).

The reference stores dated snapshots of each deal; the ledger stores what changed at each date as
events of our own format. Summaries are written from the structured facts, not copied from the
reference notes. Run: python tools/build_ledger.py [REFERENCE_DIR]
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from events.envelope import NewEvent  # noqa: E402
from events.parties import default_registry  # noqa: E402
from events.payloads import (  # noqa: E402
    CapacityCameOnline,
    Chips,
    Counterparty,
    CounterpartyJoined,
    DealReported,
    DealsLinked,
    DealStatusChanged,
    DealTermsRevised,
    SourceAdded,
)

# MW reported live, read from the reference notes by hand: only one capacity_online event gives
# an MW figure ("running at the 1 GW level"); the others count chips or buildings.
ONLINE_MW = {("xai-colossus-2-memphis", "2026-01-17"): 1000.0}
TERMS = ("kind", "capacity_mw", "value_usd", "chips", "term_years", "online_from", "location")
KIND_WORDS = {
    "cloud_contract": "cloud contract",
    "datacenter_lease": "data-center lease",
    "chip_purchase": "chip purchase",
    "owned_build": "own build",
    "capacity_partnership": "capacity partnership",
    "investment_for_compute": "investment tied to compute",
    "guarantee": "guarantee",
    "power_supply": "power supply deal",
}


def name(slug: str) -> str:
    return default_registry().get(slug).name


def money(usd: float) -> str:
    if usd >= 1e12:
        return f"${usd / 1e12:.2f}".rstrip("0").rstrip(".") + " trillion"
    if usd >= 1e9:
        return f"${usd / 1e9:.1f}".removesuffix(".0") + " billion"
    return f"${usd / 1e6:.0f} million"


def power(mw: float) -> str:
    return f"{mw / 1000:.2f}".rstrip("0").rstrip(".") + " GW" if mw >= 1000 else f"{mw:.0f} MW"


def event_id(key: str, day: str) -> UUID:
    """A UUIDv7 whose time is the event's date and whose random bits come from its key."""
    ms = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
    rand = int.from_bytes(hashlib.sha256(key.encode()).digest()[:10], "big")
    value = (ms << 80) | (0x7 << 76) | (((rand >> 64) & 0xFFF) << 64) | (0b10 << 62)
    return UUID(int=value | (rand & ((1 << 62) - 1)))


def title_of(row: dict) -> str:
    suppliers = [c["party"] for c in row["counterparties"] if c["role"] != "investor"]
    who = name(suppliers[0]) if suppliers else "own"
    return (
        f"{name(row['lab'])} / {who}: {KIND_WORDS[row['kind']]} ({row['deal'].rsplit('-', 1)[-1]})"[
            :200
        ]
    )


def describe(row: dict) -> str:
    """One sentence in our words from the structured facts of a snapshot."""
    parts = [f"{name(row['lab'])} {KIND_WORDS[row['kind']]}"]
    others = sorted({name(c["party"]) for c in row["counterparties"]})
    if others:
        parts.append("with " + ", ".join(others))
    facts = []
    if row["capacity_mw"]:
        facts.append(power(row["capacity_mw"]))
    if row["value_usd"]:
        facts.append(money(row["value_usd"]))
    if row["chips"]:
        chips = row["chips"]
        count = f"{chips['count']:,} " if chips.get("count") else ""
        facts.append(f"{count}{chips.get('family') or 'chips'} from {name(chips['vendor'])}")
    if row["term_years"]:
        facts.append(f"{row['term_years']:g} years")
    if row["online_from"]:
        facts.append(f"online from {row['online_from']}")
    if row["location"]:
        facts.append(f"at {row['location']}")
    text = (
        " ".join(parts) + (": " + ", ".join(facts) if facts else "") + f"; status {row['status']}."
    )
    return text[:2000]


def chips_of(row: dict) -> Chips | None:
    c = row["chips"]
    return Chips(vendor=c["vendor"], family=c.get("family"), count=c.get("count")) if c else None


def cps_of(row: dict) -> tuple[Counterparty, ...]:
    seen, out = set(), []
    for c in row["counterparties"]:
        if (c["party"], c["role"]) not in seen and c["party"] != row["lab"]:
            seen.add((c["party"], c["role"]))
            out.append(Counterparty(party=c["party"], role=c["role"]))
    return tuple(out)


def payloads_for(prev: dict | None, row: dict) -> list:
    precision = row["date_precision"]
    if prev is None:
        return [
            DealReported(
                lab=row["lab"],
                kind=row["kind"],
                status=row["status"],
                counterparties=cps_of(row),
                capacity_mw=row["capacity_mw"],
                value_usd=row["value_usd"],
                chips=chips_of(row),
                term_years=row["term_years"],
                online_from=row["online_from"],
                location=row["location"],
                title=title_of(row),
                summary=describe(row),
                date_precision=precision,
            )
        ]
    out: list = []
    changed = {f: row[f] for f in TERMS if row[f] != prev[f] and row[f] is not None}
    before = {(c.party, c.role) for c in cps_of(prev)}
    after = {(c.party, c.role) for c in cps_of(row)}
    if before - after:
        changed["counterparties"] = cps_of(row)
    if changed:
        if "chips" in changed:
            changed["chips"] = chips_of(row)
        out.append(DealTermsRevised(**changed, summary=describe(row), date_precision=precision))
    if not before - after:
        for party, role in sorted(after - before):
            out.append(CounterpartyJoined(party=party, role=role))
    if row["status"] != prev["status"]:
        out.append(DealStatusChanged(status=row["status"], date_precision=precision))
    if row["event"] == "capacity_online":
        mw = ONLINE_MW.get((row["deal"], row["date"]))
        note = f"Capacity reported live ({power(mw)})." if mw else "Capacity reported live."
        out.append(CapacityCameOnline(mw=mw, note=note, date_precision=precision))
    if not out:
        out.append(SourceAdded(note="A further report on the deal as it stood."))
    return out


def build(reference: Path) -> list[NewEvent]:
    rows = [
        json.loads(line) for line in (reference / "deals.jsonl").read_text().splitlines() if line
    ]
    links = [
        json.loads(line) for line in (reference / "links.jsonl").read_text().splitlines() if line
    ]
    events: list[NewEvent] = []
    state: dict[str, dict] = {}
    first: dict[str, dict] = {}
    for row in rows:
        deal = row["deal"]
        for n, payload in enumerate(payloads_for(state.get(deal), row)):
            key = f"ledger:{deal}:{row['date']}:{type(payload).__name__}:{n}"
            events.append(
                NewEvent(
                    stream_id=f"deal:{deal}",
                    payload=payload,
                    occurred_at=datetime.fromisoformat(row["date"]).replace(tzinfo=UTC),
                    actor="ledger",
                    source_url=row["source_url"],
                    source_title=row["source_title"][:500],
                    idempotency_key=key,
                    event_id=event_id(key, row["date"]),
                )
            )
        state[deal] = row
        first.setdefault(deal, row)
    for link in links:
        # The link became known with the later deal's first report; cite that report.
        cited = max(first[link["deal"]], first[link["other"]], key=lambda r: r["date"])
        key = f"ledger-link:{link['deal']}:{link['relation']}:{link['other']}"
        relation_words = {
            "part_of": "is part of",
            "supersedes": "replaces",
            "overlaps": "shares capacity with",
        }[link["relation"]]
        events.append(
            NewEvent(
                stream_id=f"deal:{link['deal']}",
                payload=DealsLinked(
                    relation=link["relation"],
                    other_deal=link["other"],
                    note=f"{link['deal']} {relation_words} {link['other']}; counted once.",
                ),
                occurred_at=datetime.fromisoformat(link["date"]).replace(tzinfo=UTC),
                actor="ledger",
                source_url=cited["source_url"],
                source_title=cited["source_title"][:500],
                idempotency_key=key,
                event_id=event_id(key, link["date"]),
            )
        )
    # Links whose date precedes a later snapshot still follow their deal's first event, so the
    # file is ordered by stream first event, which keeps every deal reported before it is linked.
    return events


def main() -> None:
    reference = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "reference"
    events = build(reference)
    out = ROOT / "events" / "data" / "ledger.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for event in events:
            fh.write(json.dumps(event.to_json_dict(), ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
    print(f"wrote {len(events)} events to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
