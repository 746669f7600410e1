"""Every vendor adapter as a :class:`~vendor_cases.base.Case` for ``test_contract.py``.

One module per vendor; a vendor with two wires (Google's Veo and Omni, Luma's Agents and
Dream Machine APIs) has a case for each.
"""

from __future__ import annotations

from . import fal, google, kling, luma, minimax, replicate, runway, seedance
from .base import Case

__all__ = ["CASES"]

CASES: tuple[Case, ...] = (
    *fal.CASES,
    *google.CASES,
    *kling.CASES,
    *luma.CASES,
    *minimax.CASES,
    *replicate.CASES,
    *runway.CASES,
    *seedance.CASES,
)
