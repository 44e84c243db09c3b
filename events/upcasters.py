"""Upcasters: pure dict -> dict steps that bring an old payload schema forward on read.

Stored rows are never rewritten. A payload written at schema N of its type is passed through
UPCASTERS[(type, N)], then (type, N+1), ... until it reaches the type's current SCHEMA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from events.errors import UpcastError

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


def _deal_reported_v0_to_v1(payload: Payload) -> Payload:
    """Schema 0 (pre-release drafts) named the headline `headline` and capacity in GW."""
    out = dict(payload)
    if "headline" in out:
        out["title"] = out.pop("headline")
    if "capacity_gw" in out:
        gw = out.pop("capacity_gw")
        if isinstance(gw, bool):  # float() would read true as 1 GW
            raise UpcastError("capacity_gw must be a number of GW, not true or false")
        try:
            out["capacity_mw"] = None if gw is None else float(gw) * 1000
        except OverflowError:  # an integer beyond any float: let validation call it too large
            out["capacity_mw"] = float("inf")
    return out


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("DealReported", 0): _deal_reported_v0_to_v1,
}


def current_schema(type_name: str) -> int:
    from events.payloads import PAYLOAD_TYPES  # late: payloads imports this module

    return PAYLOAD_TYPES[type_name].SCHEMA


def upcast(type_name: str, schema: int, payload: Payload) -> Payload:
    """Bring `payload` from `schema` to the current schema of `type_name`, one step at a time."""
    target = current_schema(type_name)
    if schema > target:
        raise UpcastError(
            f"{type_name} payload has schema {schema}, newer than this version knows ({target}); "
            "upgrade computewatch"
        )
    while schema < target:
        step = UPCASTERS.get((type_name, schema))
        if step is None:
            raise UpcastError(f"no upcaster for {type_name} from schema {schema}")
        payload = step(payload)
        schema += 1
    return payload
