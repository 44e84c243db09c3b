"""Alert rules from what users type: labs, metrics, thresholds, and clear errors (pure)."""

from __future__ import annotations

import pytest

from bot.alerts import RuleSpec, describe, next_rule_id, parse_rule
from bot.errors import UserInputError
from events.parties import default_registry

REGISTRY = default_registry()


def test_rule_specs_are_read_from_what_users_type() -> None:
    assert parse_rule(REGISTRY, "Anthropic", "contracted_gw", ">= 5") == RuleSpec(
        "anthropic", "contracted_gw", ">=", 5.0
    )
    assert parse_rule(REGISTRY, "openai", "contracted", "over 500 MW").threshold == 0.5
    assert parse_rule(REGISTRY, "openai", "committed_usd", "<= $20B") == RuleSpec(
        "openai", "committed_usd", "<=", 20e9
    )
    assert parse_rule(REGISTRY, "any", "new_deal_gw", "1") == RuleSpec(
        None, "new_deal_gw", ">=", 1.0
    )


@pytest.mark.parametrize(
    ("lab", "metric", "threshold", "says"),
    [
        (
            "anthropik",
            "contracted_gw",
            ">= 5",
            "no lab or company is called 'anthropik'. Did you mean anthropic",
        ),
        ("anthropic", "gigawatts", ">= 5", "metric: 'gigawatts' is not one of committed_gw"),
        ("anthropic", "contracted_gw", "lots", "threshold: 'lots' is not a threshold; write e.g."),
        ("anthropic", "contracted_gw", ">= 5 kg", "'kg' is not a unit for contracted_gw"),
        ("anthropic", "contracted_gw", ">= 0", "give a positive threshold"),
        ("anthropic", "deals", ">= 2.5", "use a whole number"),
        ("any", "contracted_gw", ">= 5", "name the lab"),
        ("any", "new_deal_gw", "<= 1", "use >="),
    ],
)
def test_bad_alert_input_gets_a_clear_message(
    lab: str, metric: str, threshold: str, says: str
) -> None:
    with pytest.raises(UserInputError, match=says.replace("(", r"\(")):
        parse_rule(REGISTRY, lab, metric, threshold)


def test_rules_read_back_as_users_wrote_them() -> None:
    assert describe(parse_rule(REGISTRY, "anthropic", "contracted_gw", ">=5"), REGISTRY) == (
        "Anthropic contracted_gw ≥ 5 GW"
    )
    assert describe(parse_rule(REGISTRY, "any", "new_deal_gw", "1"), REGISTRY) == (
        "any new deal ≥ 1 GW"
    )


def test_rule_ids_are_short_and_never_reused() -> None:
    spec = RuleSpec("anthropic", "contracted_gw", ">=", 5.0)

    assert next_rule_id(spec, {"anthropic-1", "anthropic-2"}) == "anthropic-3"
    assert next_rule_id(RuleSpec(None, "new_deal_gw", ">=", 1.0), set()) == "any-1"
