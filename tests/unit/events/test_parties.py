"""The party registry: lookup by slug, name or alias in any case, and "did you mean" help."""

from __future__ import annotations

import json

import pytest

from events.errors import UnknownPartyError
from events.parties import Party, PartyRegistry, default_registry, normalise_name, parse_registry
from events.vocabulary import PartyKind


@pytest.fixture
def registry() -> PartyRegistry:
    return default_registry()


@pytest.mark.parametrize(
    "name",
    [
        "amazon",
        "Amazon",
        "Amazon Cloud Technology",
        "aws",
        "AWS",
        "amazon web-services",
        "  Amazon   Web Services ",
    ],
)
def test_any_alias_of_a_party_resolves_to_its_slug_in_any_case(
    registry: PartyRegistry, name: str
) -> None:
    assert registry.resolve(name).slug == "amazon"


def test_a_slug_with_a_hyphen_resolves_when_written_with_spaces(registry: PartyRegistry) -> None:
    assert registry.resolve("blue owl").slug == "blue-owl"


def test_find_returns_none_for_an_unknown_name(registry: PartyRegistry) -> None:
    assert registry.find("Acme AI") is None


def test_a_misspelt_lab_gets_the_right_suggestion(registry: PartyRegistry) -> None:
    assert registry.suggest("antropic")[0] == "anthropic"


def test_resolving_a_misspelt_name_raises_with_suggestions(registry: PartyRegistry) -> None:
    with pytest.raises(UnknownPartyError, match="Did you mean: anthropic") as raised:
        registry.resolve("antropic")

    assert raised.value.name == "antropic"
    assert "anthropic" in raised.value.suggestions


def test_a_prefix_suggests_the_parties_it_starts(registry: PartyRegistry) -> None:
    assert "coreweave" in registry.suggest("corew")


def test_a_name_like_nothing_gets_no_suggestion(registry: PartyRegistry) -> None:
    with pytest.raises(UnknownPartyError) as raised:
        registry.resolve("zzzzqqqq")

    assert raised.value.suggestions == []
    assert "Did you mean" not in str(raised.value)


def test_an_empty_name_gets_no_suggestion(registry: PartyRegistry) -> None:
    assert registry.suggest("  ") == []


def test_get_takes_only_an_exact_slug(registry: PartyRegistry) -> None:
    with pytest.raises(UnknownPartyError, match="Did you mean: amazon"):
        registry.get("AWS")


def test_suggestions_are_limited(registry: PartyRegistry) -> None:
    assert len(registry.suggest("a", limit=2)) <= 2


def test_the_bundled_registry_knows_the_main_labs_and_providers(registry: PartyRegistry) -> None:
    labs = {p.slug for p in registry.labs()}

    assert {"anthropic", "openai", "xai", "meta"} <= labs
    assert {"google", "amazon", "oracle", "coreweave", "microsoft", "nvidia"} <= {
        p.slug for p in registry
    }
    assert registry.get("coreweave").kind is PartyKind.NEOCLOUD


def test_every_alias_maps_to_a_party_that_exists(registry: PartyRegistry) -> None:
    assert set(registry.aliases().values()) <= {p.slug for p in registry}
    assert len(registry) == len(list(registry))


def test_an_alias_that_names_two_parties_is_refused() -> None:
    parties = [
        Party(slug="acme-ai", name="Acme AI", kind="lab", aliases=("Acme",)),
        Party(slug="acme-cloud", name="Acme Cloud", kind="neocloud", aliases=("ACME",)),
    ]

    with pytest.raises(ValueError, match="names two parties"):
        PartyRegistry(parties)


def test_a_duplicate_slug_is_refused() -> None:
    party = Party(slug="acme-ai", name="Acme AI", kind="lab")

    with pytest.raises(ValueError, match="duplicate party slug 'acme-ai'"):
        PartyRegistry([party, party])


def test_a_registry_is_parsed_from_the_parties_json_format() -> None:
    document = json.dumps(
        {
            "schema": 1,
            "parties": [
                {"slug": "acme-ai", "name": "Acme AI", "kind": "lab", "aliases": ["Acme Labs"]},
            ],
        }
    )

    registry = parse_registry(document)

    assert registry.resolve("ACME LABS").slug == "acme-ai"
    assert "acme-ai" in registry


def test_names_are_normalised_for_case_punctuation_and_spacing() -> None:
    assert normalise_name("  Amazon  Web-Services! ") == "amazon web services"
