"""Deal status transitions: which moves a deal may make, and the message when it may not."""

from __future__ import annotations

import pytest

from events.errors import InvalidTransitionError
from events.vocabulary import LADDER, DealStatus, allowed_transitions, check_transition

S = DealStatus


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.RUMORED, S.NEGOTIATING),
        (S.NEGOTIATING, S.LOI),
        (S.LOI, S.SIGNED),
        (S.SIGNED, S.OPERATIONAL),
        (S.RUMORED, S.SIGNED),
    ],
)
def test_a_deal_may_climb_the_ladder(current: DealStatus, new: DealStatus) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(("current", "new"), [(S.SIGNED, S.NEGOTIATING), (S.OPERATIONAL, S.LOI)])
def test_a_deal_may_move_down_the_ladder_when_news_corrects_itself(
    current: DealStatus, new: DealStatus
) -> None:
    check_transition(current, new)


@pytest.mark.parametrize("current", [*LADDER, S.SHELVED])
def test_a_deal_may_be_cancelled_from_any_open_status(current: DealStatus) -> None:
    check_transition(current, S.CANCELLED)


@pytest.mark.parametrize("current", LADDER)
def test_a_deal_may_be_shelved_from_any_ladder_status(current: DealStatus) -> None:
    check_transition(current, S.SHELVED)


@pytest.mark.parametrize("new", [*LADDER, S.SHELVED])
def test_cancelled_is_final(new: DealStatus) -> None:
    with pytest.raises(
        InvalidTransitionError,
        match=rf"cancelled deal cannot become {new.value} \(cancelled is final\)",
    ):
        check_transition(S.CANCELLED, new)


@pytest.mark.parametrize("new", LADDER)
def test_a_shelved_deal_can_be_revived(new: DealStatus) -> None:
    check_transition(S.SHELVED, new)


@pytest.mark.parametrize("status", list(S))
def test_moving_to_the_same_status_is_refused(status: DealStatus) -> None:
    with pytest.raises(InvalidTransitionError, match=f"already {status.value}"):
        check_transition(status, status)


@pytest.mark.parametrize("status", list(S))
def test_no_status_lists_itself_among_its_moves(status: DealStatus) -> None:
    assert status not in allowed_transitions(status)


def test_a_cancelled_deal_has_no_moves() -> None:
    assert allowed_transitions(S.CANCELLED) == frozenset()
