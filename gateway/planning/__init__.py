"""Planning: from a storyboard to a priced, routed, normalized plan. Pure; no I/O.

``plan_job`` answers ``POST /v1/quote`` and is the first step of ``POST /v1/jobs``;
``plan_for_candidate`` refits one shot to a fallback model for the engine. Both raise
:class:`PlanningError` (a 422 problem) with a stable ``code`` and per-field errors.
"""

from .errors import PlanningError
from .normalize import DEFAULTS, Normalized, dimensions, normalize
from .planner import BackendStatus, CandidatePlan, plan_for_candidate, plan_job, plan_shot
from .quote import estimate_micros, hold_micros
from .request import Needs, ShotRequest, shot_request
from .routing import RoutingTable, load_routing, parse_routing

__all__ = [
    "DEFAULTS",
    "BackendStatus",
    "CandidatePlan",
    "Needs",
    "Normalized",
    "PlanningError",
    "RoutingTable",
    "ShotRequest",
    "dimensions",
    "estimate_micros",
    "hold_micros",
    "load_routing",
    "normalize",
    "parse_routing",
    "plan_for_candidate",
    "plan_job",
    "plan_shot",
    "shot_request",
]
