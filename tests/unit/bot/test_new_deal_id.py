"""The id /record gives a new deal: readable, and never one autocomplete already offers."""

from __future__ import annotations

from bot.discord_app.drafts import new_deal_id
from bot.discord_app.index import DealIds
from events.payloads import Counterparty


def test_a_new_deal_id_reads_lab_counterparty_and_year() -> None:
    parties = [Counterparty(party="google", role="provider")]

    assert new_deal_id("anthropic", parties, "cloud_contract", 2026, DealIds.of([])) == (
        "anthropic-google-2026"
    )
    assert new_deal_id("xai", [], "owned_build", 2025, DealIds.of([])) == "xai-owned-build-2025"


def test_a_taken_id_gets_the_next_free_number() -> None:
    taken = DealIds.of(["anthropic-google-2026", "anthropic-google-2026-2", "zeta"])
    parties = [Counterparty(party="google", role="provider")]

    assert new_deal_id("anthropic", parties, "cloud_contract", 2026, taken) == (
        "anthropic-google-2026-3"
    )
