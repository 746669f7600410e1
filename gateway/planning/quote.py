"""What a shot will cost on one model, in integer micro-USD.

Estimates round *up* to the micro-USD: the reservation taken from an estimate must
never fall short of the price list.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from gateway.catalog import CatalogEntry, micros, with_markup
from reelgate.types import ShotParams, ShotPlan

__all__ = ["estimate_micros", "hold_micros"]


def _times(per_second_micros: int, seconds: float) -> int:
    exact = Decimal(per_second_micros) * Decimal(str(seconds))
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def estimate_micros(entry: CatalogEntry, params: ShotParams, markup_bps: int = 0) -> int:
    """Per second at the resolution (else per video), plus the audio surcharge; with a
    tenant's markup (+2000: +20%; -1000: 10% off), rounded up."""
    price = entry.price
    per_second = price.per_second_micros.get(params.resolution)
    if per_second is not None:
        cost = _times(per_second, params.duration_s)
    else:
        cost = price.per_video_micros or 0
    if params.audio and price.audio_per_second_micros:
        cost += _times(price.audio_per_second_micros, params.duration_s)
    return with_markup(cost, markup_bps)


def hold_micros(plan: ShotPlan) -> int:
    """What accepting a shot reserves: the dearest runnable model on its route, so a
    fallback is always covered (a pinned model: its own estimate)."""
    prices = [
        micros(c.estimate_usd)
        for c in plan.route
        if c.status != "skipped" and c.estimate_usd is not None
    ]
    return max([micros(plan.estimate_usd), *prices])
