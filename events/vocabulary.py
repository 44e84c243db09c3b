"""The closed vocabulary of compute deals: kinds, statuses, roles, and the allowed status moves."""

from enum import StrEnum

from events.errors import InvalidTransitionError


class DealKind(StrEnum):
    CLOUD_CONTRACT = "cloud_contract"
    DATACENTER_LEASE = "datacenter_lease"
    CHIP_PURCHASE = "chip_purchase"
    OWNED_BUILD = "owned_build"
    CAPACITY_PARTNERSHIP = "capacity_partnership"
    INVESTMENT_FOR_COMPUTE = "investment_for_compute"
    GUARANTEE = "guarantee"
    POWER_SUPPLY = "power_supply"


class DealStatus(StrEnum):
    RUMORED = "rumored"
    NEGOTIATING = "negotiating"
    LOI = "loi"
    SIGNED = "signed"
    OPERATIONAL = "operational"
    SHELVED = "shelved"
    CANCELLED = "cancelled"


class Role(StrEnum):
    PROVIDER = "provider"
    CHIP_SUPPLIER = "chip_supplier"
    LANDLORD = "landlord"
    GUARANTOR = "guarantor"
    FINANCIER = "financier"
    INVESTOR = "investor"
    PARTNER = "partner"
    POWER_SUPPLIER = "power_supplier"


class PartyKind(StrEnum):
    LAB = "lab"
    HYPERSCALER = "hyperscaler"
    CHIPMAKER = "chipmaker"
    NEOCLOUD = "neocloud"
    DC_DEVELOPER = "dc_developer"
    FINANCIER = "financier"
    ENERGY = "energy"
    OTHER = "other"


class LinkRelation(StrEnum):
    """How two deals share capacity (see the README, "Linked deals")."""

    PART_OF = "part_of"
    SUPERSEDES = "supersedes"
    OVERLAPS = "overlaps"


# The ladder a deal climbs. A move down the ladder is allowed too: news often corrects itself
# (a "signed" deal later described as still under negotiation), and refusing such a move would
# make the log disagree with its sources. What is not allowed is leaving a terminal state
# other than by reviving a shelved deal, which happens (Stargate sites, the Nvidia LOI).
LADDER: tuple[DealStatus, ...] = (
    DealStatus.RUMORED,
    DealStatus.NEGOTIATING,
    DealStatus.LOI,
    DealStatus.SIGNED,
    DealStatus.OPERATIONAL,
)
ENDED: frozenset[DealStatus] = frozenset({DealStatus.SHELVED, DealStatus.CANCELLED})
PIPELINE: frozenset[DealStatus] = frozenset({DealStatus.NEGOTIATING, DealStatus.LOI})
COMMITTED: frozenset[DealStatus] = frozenset({DealStatus.SIGNED, DealStatus.OPERATIONAL})
# Money that flows to the lab rather than from it: reported as backing, never as spend.
BACKING_KINDS: frozenset[DealKind] = frozenset(
    {DealKind.INVESTMENT_FOR_COMPUTE, DealKind.GUARANTEE}
)
# Roles whose party supplies the capacity itself: the basis of "by provider" and its HHI.
SUPPLY_ROLES: tuple[Role, ...] = (Role.PROVIDER, Role.LANDLORD, Role.CHIP_SUPPLIER)


def allowed_transitions(current: DealStatus) -> frozenset[DealStatus]:
    """The statuses a deal in `current` may move to (never to itself)."""
    if current is DealStatus.CANCELLED:
        return frozenset()
    if current is DealStatus.SHELVED:
        return frozenset(set(LADDER) | {DealStatus.CANCELLED})
    return frozenset((set(LADDER) | ENDED) - {current})


def check_transition(current: DealStatus, new: DealStatus) -> None:
    """Raise InvalidTransitionError unless a deal may move from `current` to `new`."""
    if new not in allowed_transitions(current):
        if new == current:
            raise InvalidTransitionError(f"The deal is already {current.value}.")
        raise InvalidTransitionError(
            f"A {current.value} deal cannot become {new.value}"
            + (" (cancelled is final)." if current is DealStatus.CANCELLED else ".")
        )
