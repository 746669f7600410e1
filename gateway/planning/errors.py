"""The one error planning raises; the API turns it into a 422 problem+json.

Codes (stable, clients branch on them):

    unknown_model         a pinned model id is not in the catalog
    unknown_kind          a shot's kind has no routing entry
    model_not_configured  a pinned model's backend has no credentials (or is down)
    unsupported_value     a value the model cannot take (strict mode, or an input mode
                          such as a last frame that no snapping can fix)
    over_max_cost         a pinned model's estimate exceeds the shot's max_cost_usd
    no_route              every candidate of the kind was skipped (each reason listed)
    invalid_value         the shot itself is inconsistent (empty prompt, last frame alone)
"""

from __future__ import annotations

from reelgate.types import ProblemField

__all__ = ["PlanningError"]


class PlanningError(Exception):
    """A storyboard that cannot be planned; ``errors`` name each field (``shots[2].fps``)."""

    def __init__(self, code: str, detail: str, errors: list[ProblemField] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = list(errors or [])

    def __repr__(self) -> str:
        return f"PlanningError({self.code!r}, {self.detail!r}, {len(self.errors)} errors)"
