"""Plain-English questions map to the command that answers them."""

from __future__ import annotations

import pytest

from bot.nl import Intent, find_parties, match_question, strip_mentions
from events.parties import default_registry

REGISTRY = default_registry()


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        (
            "<@123> who has more contracted GW, anthropic or openai?",
            Intent("compare", {"labs": ["anthropic", "openai"]}),
        ),
        ("how is xAI doing?", Intent("position", {"lab": "xai"})),
        (
            "what is OpenAI's position as of 2025-12-31",
            Intent("position", {"lab": "openai", "as_of": "2025-12-31"}),
        ),
        (
            "anthropic as of 2025-12-31 as known on 2025-06-01",
            Intent(
                "position", {"lab": "anthropic", "known_at": "2025-06-01", "as_of": "2025-12-31"}
            ),
        ),
        ("who leads?", Intent("leaderboard", {"metric": "committed_gw"})),
        ("leaderboard by dollars", Intent("leaderboard", {"metric": "committed_usd"})),
        (
            "explain anthropic pipeline",
            Intent("explain", {"lab": "anthropic", "bucket": "pipeline"}),
        ),
        ("why is openai so big?", Intent("explain", {"lab": "openai", "bucket": "contracted"})),
        ("list the deals of Anthropic", Intent("deals", {"lab": "anthropic"})),
        ("how far can I trust these numbers?", Intent("coverage")),
        ("which labs do you follow?", Intent("labs")),
        ("help", Intent("help")),
    ],
)
def test_question_maps_to_its_command(question: str, intent: Intent) -> None:
    assert match_question(question, REGISTRY) == intent


@pytest.mark.parametrize("question", ["what's the weather like?", "<@1>", "   "])
def test_question_that_fits_no_rule_maps_to_nothing(question: str) -> None:
    assert match_question(question, REGISTRY) is None


def test_labs_are_preferred_to_their_suppliers() -> None:
    assert find_parties("is google renting compute to anthropic?", REGISTRY) == ["anthropic"]


def test_suppliers_are_found_when_no_lab_is_named() -> None:
    assert find_parties("what does AWS rent out?", REGISTRY) == ["amazon"]


def test_mentions_are_stripped() -> None:
    assert strip_mentions("<@123> <@!45> hi <@&6>") == "hi"


def test_intent_reads_as_a_command_line() -> None:
    intent = Intent("compare", {"labs": ["anthropic", "openai"], "as_of": None})

    assert intent.line() == "/compare labs:anthropic,openai"
