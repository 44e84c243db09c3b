"""Unit tests of deal extraction on short invented texts (events/extract.py)."""

from events.extract import DealCandidate, candidates_to_jsonl_rows, extract_candidates
from events.vocabulary import DealKind, DealStatus, Role


def only(text: str) -> DealCandidate:
    found = extract_candidates(text)
    assert len(found) == 1, found
    return found[0]


def test_signed_cloud_contract_reads_lab_provider_and_figures() -> None:
    deal = only("Mistral AI signed a $2 billion, four-year contract with CoreWeave for 300 MW.")

    assert deal.lab == "mistral"
    assert [(c.party, c.role) for c in deal.counterparties] == [("coreweave", Role.PROVIDER)]
    assert deal.kind is DealKind.CLOUD_CONTRACT
    assert deal.status is DealStatus.SIGNED
    assert (deal.value_usd, deal.capacity_mw, deal.term_years) == (2e9, 300, 4)


def test_aliases_resolve_to_registry_slugs() -> None:
    deal = only("Poolside has inked a deal with Amazon Cloud Technology worth $900 million.")

    assert deal.lab == "poolside"
    assert deal.counterparties[0].party == "amazon"


def test_letter_of_intent_is_loi_not_signed() -> None:
    deal = only("xAI signed a letter of intent with Nscale for 500 MW of GPU capacity.")

    assert deal.status is DealStatus.LOI


def test_talks_are_negotiating() -> None:
    deal = only("Meta is in talks with Oracle over a $20 billion cloud computing deal.")

    assert deal.status is DealStatus.NEGOTIATING
    assert deal.value_usd == 2e10


def test_potential_deal_is_rumored() -> None:
    deal = only("Inflection AI's potential compute deal with Lambda is drawing attention.")

    assert deal.status is DealStatus.RUMORED


def test_running_capacity_is_operational() -> None:
    deal = only("The cluster Nebius built for Mistral AI is already operational, with 18,000 GPUs.")

    assert deal.status is DealStatus.OPERATIONAL
    assert deal.chips is not None and deal.chips.count == 18_000


def test_chip_vendor_deal_is_chip_purchase() -> None:
    deal = only("SSI placed an order with AMD for 100,000 MI450 chips.")

    assert deal.kind is DealKind.CHIP_PURCHASE
    assert deal.chips is not None
    assert (deal.chips.vendor, deal.chips.family, deal.chips.count) == ("amd", "mi450", 100_000)


def test_investment_in_a_lab_is_investment_for_compute() -> None:
    deal = only("Nvidia will invest up to $2 billion in xAI.")

    assert deal.kind is DealKind.INVESTMENT_FOR_COMPUTE
    assert deal.counterparties[0].role is Role.INVESTOR


def test_power_supplier_makes_a_power_supply_deal() -> None:
    deal = only("Entergy agreed to supply 1.5 gigawatts of electricity to Meta for 15 years.")

    assert (deal.lab, deal.kind, deal.capacity_mw) == ("meta", DealKind.POWER_SUPPLY, 1500)
    assert deal.counterparties[0].role is Role.POWER_SUPPLIER


def test_two_deals_in_one_sentence_are_separated() -> None:
    text = "Microsoft will invest $4 billion in Poolside while Nvidia commits $1 billion."

    found = extract_candidates(text)

    assert [(d.counterparties[0].party, d.value_usd) for d in found] == [
        ("microsoft", 4e9),
        ("nvidia", 1e9),
    ]


def test_later_sentence_about_the_deal_adds_to_it() -> None:
    text = (
        "OpenAI announced a cloud partnership with Nebius. "
        "That deal gives OpenAI up to 2 GW of capacity from 2027."
    )

    deal = only(text)

    assert (deal.capacity_mw, deal.online_from) == (2000, "2027")


def test_up_to_figures_are_labelled_with_the_number() -> None:
    deal = only("Anthropic secured up to $7 billion of compute from Fluidstack.")

    assert deal.value_usd == 7e9


def test_running_totals_are_not_deal_values() -> None:
    text = "Lambda signed a $1 billion deal with Poolside, bringing the total value to $3 billion."

    deal = only(text)

    assert deal.value_usd == 1e9


def test_commentary_without_a_deal_yields_nothing() -> None:
    text = (
        "Renting compute from AWS or Google is a strategic mistake for labs like OpenAI and "
        "Anthropic. Power, not chips, decides how fast capacity comes online."
    )

    assert extract_candidates(text) == []


def test_usage_remarks_are_not_deals() -> None:
    text = "Anthropic has relied on cloud providers such as Google Cloud and Microsoft."

    assert extract_candidates(text) == []


def test_rows_carry_the_file_and_the_label_fields() -> None:
    deal = only("Mistral AI signed a $2 billion contract with CoreWeave.")

    rows = candidates_to_jsonl_rows("news/a.txt", [deal])

    assert rows[0]["file"] == "news/a.txt"
    assert set(rows[0]) == {
        "file",
        "lab",
        "counterparties",
        "kind",
        "status",
        "capacity_mw",
        "value_usd",
        "chips",
        "term_years",
        "online_from",
        "location",
        "evidence",
    }
    assert rows[0]["counterparties"] == [{"party": "coreweave", "role": "provider"}]
