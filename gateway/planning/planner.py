"""Plan a storyboard: per shot, a ranked route of models and the exact request for each.

For every candidate of a shot the planner does what running it would do — compile and
lint the prompt, fit the parameters, price it — so that skipping a candidate (no
credentials, over budget, a value it cannot take) is decided on facts and explained.
The engine calls :func:`plan_for_candidate` to run a shot on a fallback later: the
same function, so a fallback gets parameters fitted to *its* limits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from gateway.catalog import Catalog, CatalogEntry, micros, usd
from gateway.prompts import CompiledPrompt, compile_prompt, lint_prompt
from reelgate.types import (
    Adjustment,
    JobCreate,
    LintWarning,
    ProblemField,
    Quote,
    RouteCandidate,
    ShotParams,
    ShotPlan,
    StructuredPrompt,
)

from .errors import PlanningError
from .normalize import normalize
from .quote import estimate_micros, hold_micros
from .request import Needs, ShotRequest, shot_request
from .routing import RoutingTable

__all__ = ["BackendStatus", "CandidatePlan", "plan_for_candidate", "plan_job", "plan_shot"]

#: ``None`` when the model's backend is configured and healthy, else why not.
BackendStatus = Callable[[CatalogEntry], str | None]


@dataclass(frozen=True)
class CandidatePlan:
    """One shot fitted to one model: what would be sent and what it would cost."""

    entry: CatalogEntry
    prompt: CompiledPrompt
    lint: list[LintWarning]
    params: ShotParams
    adjustments: list[Adjustment]
    estimate_micros: int
    #: Non-empty when the model cannot run the shot as asked (see ``normalize``).
    problems: list[ProblemField]

    @property
    def estimate_usd(self) -> Decimal:
        return usd(self.estimate_micros)


def _model_lint(
    req: ShotRequest, entry: CatalogEntry, compiled: CompiledPrompt, audio: bool
) -> list[LintWarning]:
    out = []
    if compiled.negative and not entry.capabilities.negative_prompt:
        msg = f"{entry.id} takes no negative prompt; it was not sent"
        out.append(LintWarning(code="negative_unsupported", message=msg, field="negative"))
    spoken = isinstance(req.prompt, StructuredPrompt) and req.prompt.dialogue
    if spoken and "prompt.dialogue" not in compiled.omitted and not audio:
        why = "set audio: true" if entry.capabilities.audio else f"{entry.id} makes no sound"
        msg = f"dialogue without audio: the line will not be heard ({why})"
        out.append(LintWarning(code="dialogue_without_audio", message=msg, field="prompt.dialogue"))
    return out


def _evaluate(req: ShotRequest, entry: CatalogEntry, markup_bps: int = 0) -> CandidatePlan:
    caps = entry.capabilities
    compiled = compile_prompt(
        req.prompt,
        style=req.style,
        negative=req.negative,
        dialect=entry.dialect,
        max_chars=caps.max_prompt_chars,
    )
    fitted = normalize(req, entry)
    lint = lint_prompt(req.prompt, compiled, caps.max_prompt_chars)
    lint += _model_lint(req, entry, compiled, fitted.params.audio)
    if compiled.negative and not caps.negative_prompt:
        compiled = replace(compiled, negative=None)
    cost = estimate_micros(entry, fitted.params, markup_bps)
    return CandidatePlan(
        entry, compiled, lint, fitted.params, fitted.adjustments, cost, fitted.problems
    )


def _check_request(req: ShotRequest) -> None:
    p, problems = req.prompt, []
    empty = (
        not p.strip()
        if isinstance(p, str)
        else not any((v or "").strip() for k, v in p if k != "negative")
    )
    if empty:
        problems.append(ProblemField(field=req.path("prompt"), message="the prompt has no text"))
    if req.last_frame is not None and req.image is None:
        msg = "last_frame needs image (the first frame) too"
        problems.append(ProblemField(field=req.path("last_frame"), message=msg))
    if problems:
        raise PlanningError("invalid_value", f"shots[{req.index}] is inconsistent", problems)


def plan_for_candidate(req: ShotRequest, entry: CatalogEntry) -> CandidatePlan:
    """``req`` fitted to ``entry``: for the engine, to run a shot on a fallback model.

    Raises :class:`PlanningError` (``unsupported_value``) when the model cannot run the
    shot as asked: an input mode it lacks, or any unsupported value in strict mode.
    Backend health and ``max_cost_usd`` are the route's business, not checked here.
    """
    _check_request(req)
    plan = _evaluate(req, entry)
    if plan.problems:
        detail = f"shots[{req.index}] cannot run on {entry.id}"
        raise PlanningError("unsupported_value", detail, plan.problems)
    return plan


@dataclass(frozen=True)
class _Skip:
    model: str
    code: str
    reason: str
    problems: Sequence[ProblemField] = ()


@dataclass(frozen=True)
class _Option:
    plan: CandidatePlan
    lacks: tuple[str, ...]
    order: int


def _consider(
    req: ShotRequest,
    needs: Needs,
    model_id: str,
    order: int,
    catalog: Catalog,
    status: BackendStatus,
    markup_bps: int = 0,
) -> _Option | _Skip:
    entry = catalog.get(model_id)
    if entry is None:
        return _Skip(model_id, "unknown_model", "not in the catalog")
    if (reason := status(entry)) is not None:
        return _Skip(model_id, "model_not_configured", reason)
    plan = _evaluate(req, entry, markup_bps)
    if plan.problems:
        reason = "; ".join(p.message for p in plan.problems)
        return _Skip(model_id, "unsupported_value", reason, plan.problems)
    if req.max_cost_usd is not None and plan.estimate_micros > micros(req.max_cost_usd):
        estimate = f"{plan.estimate_usd.normalize():f}"
        reason = f"estimate {estimate} USD is over max_cost_usd {req.max_cost_usd}"
        problem = ProblemField(field=req.path("max_cost_usd"), message=f"{model_id}: {reason}")
        return _Skip(model_id, "over_max_cost", reason, [problem])
    lacks = [
        ("audio", needs.audio and not plan.params.audio),
        ("4k", needs.uhd and plan.params.resolution != "4k"),
    ]
    return _Option(plan, tuple(name for name, missing in lacks if missing), order)


def _rank(options: list[_Option], prefer: str | None) -> list[_Option]:
    """Models lacking a soft need last; then ``prefer``; drafts never promoted; then table order."""

    def key(o: _Option) -> tuple[bool, bool, int, int]:
        e = o.plan.entry
        by = {"quality": -e.quality, "speed": -e.speed, "cost": o.plan.estimate_micros}
        return (bool(o.lacks), bool(prefer) and e.draft, by.get(prefer or "", 0), o.order)

    return sorted(options, key=key)


def _no_route(req: ShotRequest, skips: list[_Skip], pinned: bool) -> PlanningError:
    where = f"shots[{req.index}]"
    if pinned:
        s = skips[0]
        problems = list(s.problems) or [
            ProblemField(field=req.path("model"), message=f"{s.model}: {s.reason}")
        ]
        return PlanningError(
            s.code, f"{where}: {s.model} cannot run this shot: {s.reason}", problems
        )
    detail = f"{where}: no model for kind {req.kind!r} can run this shot"
    errors = [
        p
        for s in skips
        for p in (s.problems or [ProblemField(field=where, message=f"{s.model}: {s.reason}")])
    ]
    return PlanningError("no_route", detail, errors)


def _candidates(req: ShotRequest, catalog: Catalog, routing: RoutingTable) -> tuple[str, ...]:
    if req.model is not None:
        if req.model not in catalog:
            msg = f"{req.model!r} is not in the catalog"
            problem = ProblemField(field=req.path("model"), message=msg, allowed=catalog.ids)
            raise PlanningError("unknown_model", f"unknown model {req.model!r}", [problem])
        return (req.model,)
    ids = routing.candidates(req.kind)
    if ids is None:
        kinds = sorted(routing.kinds)
        msg = f"unknown kind {req.kind!r}; known: {', '.join(kinds)}"
        problem = ProblemField(field=f"shots[{req.index}].kind", message=msg, allowed=kinds)
        raise PlanningError("unknown_kind", msg, [problem])
    return ids


def plan_shot(
    req: ShotRequest,
    *,
    catalog: Catalog,
    routing: RoutingTable,
    backend_status: BackendStatus,
    markup_bps: int = 0,
) -> ShotPlan:
    """The plan for one shot: the ranked route and the request for its first model.

    Prices are the tenant's: the catalog's with ``markup_bps`` (+2000: +20%).
    """
    _check_request(req)
    needs = Needs.of(req)
    options: list[_Option] = []
    skips: list[_Skip] = []
    for order, model_id in enumerate(_candidates(req, catalog, routing)):
        found = _consider(req, needs, model_id, order, catalog, backend_status, markup_bps)
        if isinstance(found, _Option):
            options.append(found)
        else:
            skips.append(found)
    if not options:
        raise _no_route(req, skips, pinned=req.model is not None)
    ranked = _rank(options, None if req.model else req.prefer)
    route = [
        RouteCandidate(
            model=o.plan.entry.id,
            status="fallback" if n else "selected",
            reason=f"lacks {', '.join(o.lacks)}" if o.lacks else None,
            estimate_usd=o.plan.estimate_usd,
        )
        for n, o in enumerate(ranked)
    ]
    route += [RouteCandidate(model=s.model, status="skipped", reason=s.reason) for s in skips]
    best = ranked[0].plan
    return ShotPlan(
        index=req.index,
        kind=req.kind,
        model=best.entry.id,
        route=route,
        prompt_sent=best.prompt.text,
        negative_sent=best.prompt.negative,
        lint=best.lint,
        params=best.params,
        adjustments=best.adjustments,
        estimate_usd=best.estimate_usd,
    )


def _memo(status: BackendStatus) -> BackendStatus:
    seen: dict[str, str | None] = {}

    def cached(entry: CatalogEntry) -> str | None:
        if entry.id not in seen:
            seen[entry.id] = status(entry)
        return seen[entry.id]

    return cached


def plan_job(
    job: JobCreate,
    *,
    catalog: Catalog,
    routing: RoutingTable,
    backend_status: BackendStatus,
    markup_bps: int = 0,
) -> Quote:
    """Plan every shot of ``job``; one :class:`PlanningError` lists every shot's problems."""
    status, plans, errors = _memo(backend_status), [], []
    for index in range(len(job.shots)):
        try:
            req = shot_request(job, index)
            plans.append(
                plan_shot(
                    req,
                    catalog=catalog,
                    routing=routing,
                    backend_status=status,
                    markup_bps=markup_bps,
                )
            )
        except PlanningError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        detail = f"{len(errors)} shots cannot be planned: " + "; ".join(e.detail for e in errors)
        raise PlanningError(errors[0].code, detail, [f for e in errors for f in e.errors])
    unconfirmed = dict.fromkeys(p.model for p in plans if not catalog[p.model].price.confirmed)
    warnings = [
        LintWarning(
            code="price_unconfirmed",
            message=f"the price of {m} is not a confirmed list price; the real cost may differ",
        )
        for m in unconfirmed
    ]
    total = sum(micros(p.estimate_usd) for p in plans)
    hold = sum(hold_micros(p) for p in plans)
    return Quote(shots=plans, total_usd=usd(total), hold_usd=usd(hold), warnings=warnings)
