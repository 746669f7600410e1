"""Vendor-reported usage as micro-USD: the units a vendor says it billed times a unit price.

Vendors report what they billed in their own units (fal's billable units, Kling's unit
deduction, Seedance and Omni tokens); the USD price per unit is configuration. Without a
price the cost stays None and the gateway settles at its catalog estimate.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["amount", "usd_micros", "usd_price"]

MILLION = Decimal(1_000_000)


def amount(value: object) -> Decimal | None:
    """A finite, non-negative number from a vendor field (int, float or numeric string)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def usd_price(value: Decimal | str | int | float) -> Decimal:
    """A configured USD price, checked once (a bad figure is a startup error)."""
    price = amount(value)
    if price is None:
        raise ValueError(f"not a USD price: {value!r}")
    return price


def usd_micros(units: Decimal | int | None, usd_per_unit: Decimal | None) -> int | None:
    """``units`` x ``usd_per_unit`` in micro-USD (half up); None when either is unknown."""
    if units is None or usd_per_unit is None:
        return None
    return int((Decimal(units) * usd_per_unit * MILLION).to_integral_value(ROUND_HALF_UP))
