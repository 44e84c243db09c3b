"""Pure helpers that turn figures into short human text (GW, $B, dates, percentages)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal


def gw(mw: float | None) -> str:
    """MW as GW with sensible precision: 11045 -> '11.05 GW', 245 -> '0.245 GW'."""
    if mw is None:
        return "n/a"
    if mw == 0:
        return "0 GW"
    # Decimal rounding half up: 11045 MW reads 11.05 GW, as a person would round it.
    value = Decimal(str(mw)) / 1000
    places = Decimal("0.01") if abs(value) >= 1 else Decimal("0.001")
    text = f"{value.quantize(places, rounding=ROUND_HALF_UP)}"
    return text.rstrip("0").rstrip(".") + " GW"


def usd(value: float | None) -> str:
    """Dollars in words a reader scans: $401B, $1.4T, $830M."""
    if value is None:
        return "n/a"
    if value == 0:
        return "$0"
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(value) >= size:
            text = f"{value / size:.2f}".rstrip("0").rstrip(".")
            return f"${text}{unit}"
    return f"${value:,.0f}"


def count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def ratio(a: float, b: float) -> str:
    """How many times a is b ('2.4x'), or a dash when b is zero."""
    if b == 0:
        return "—" if a == 0 else "∞"
    return f"{a / b:.2f}x"


def day(when: datetime | None) -> str:
    return "now" if when is None else when.strftime("%Y-%m-%d")


def signed_gw(mw: float) -> str:
    return ("+" if mw > 0 else "") + gw(mw) if mw else "±0 GW"
