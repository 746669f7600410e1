"""The wire contract between the SDK and the gateway.

The gateway's request and response bodies *are* these models, so the SDK and the
server cannot drift. Money travels as decimal strings (``"0.4000"``) and is held
as integer micro-USD on the server. Everything here is plain pydantic: no I/O.
"""

from __future__ import annotations

import binascii
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    StrictBool,
)

__all__ = [
    "Adjustment",
    "ApiKey",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "Attempt",
    "AttemptStatus",
    "Balance",
    "Credit",
    "CreditCreate",
    "Job",
    "JobCreate",
    "JobStatus",
    "LintWarning",
    "Model",
    "ModelCapabilities",
    "ModelPrice",
    "Output",
    "Page",
    "Problem",
    "ProblemField",
    "Quote",
    "RouteCandidate",
    "Scope",
    "Shot",
    "ShotDefaults",
    "ShotParams",
    "ShotPlan",
    "ShotSpec",
    "ShotStatus",
    "SignedUsd",
    "StructuredPrompt",
    "Tenant",
    "TenantCreate",
    "TenantUpdate",
    "Usage",
    "UsageRow",
    "Usd",
]

MAX_PROMPT_CHARS = 4000
MAX_SHOTS = 64

#: A USD amount: accepted as a number or a decimal string, always sent as a string.
Usd = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=6),
    PlainSerializer(lambda d: format(d.normalize(), "f"), return_type=str, when_used="json"),
]

JobStatus = Literal["queued", "running", "succeeded", "partially_succeeded", "failed", "canceled"]
ShotStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
AttemptStatus = Literal[
    "pending", "submitted", "running", "fetching", "succeeded", "failed", "canceled", "unknown"
]
Prefer = Literal["quality", "cost", "speed"]
NormalizeMode = Literal["snap", "strict"]

_Text = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
_AspectRatio = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}:[1-9][0-9]{0,2}$")]
_Resolution = Annotated[str, Field(pattern=r"^([1-9][0-9]{1,3}p|4k)$")]  # 64p: tiny test models
_Kind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
_ModelId = Annotated[
    str, Field(pattern=r"^(auto|[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:/-]*)$")
]
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def _check_media_ref(value: str) -> str:
    """An http(s) URL, or a base64 ``data:`` URI whose bytes are the image it claims."""
    if value.startswith(("https://", "http://")):
        return value
    if not value.startswith("data:"):
        raise ValueError("must be an http(s) URL or a data: URI (data:image/png;base64,...)")
    header, sep, payload = value[5:].partition(",")
    mime, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or mime not in _IMAGE_MAGIC:
        allowed = ", ".join(_IMAGE_MAGIC)
        raise ValueError(f"a data: URI must be base64 with a media type of {allowed}")
    try:
        data = binascii.a2b_base64(payload, strict_mode=True)
    except binascii.Error:
        raise ValueError("the data: URI's base64 is malformed") from None
    webp = mime != "image/webp" or data[8:12] == b"WEBP"
    if not data.startswith(_IMAGE_MAGIC[mime]) or not webp:
        raise ValueError(f"the data: URI's bytes are not a {mime.removeprefix('image/')} image")
    return value


_MediaRef = Annotated[
    str, Field(min_length=1, max_length=8_000_000), AfterValidator(_check_media_ref)
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StructuredPrompt(_Wire):
    """A prompt in parts; the gateway orders and joins them per model dialect."""

    subject: _Text | None = None
    action: _Text | None = None
    environment: _Text | None = None
    lighting: _Text | None = None
    style: _Text | None = None
    camera: _Text | None = None
    mood: _Text | None = None
    negative: _Text | None = None
    dialogue: _Text | None = None


class ShotDefaults(_Wire):
    """Storyboard-level values a shot inherits unless it sets its own."""

    duration_s: Annotated[float, Field(gt=0, le=120)] | None = None
    aspect_ratio: _AspectRatio | None = None
    resolution: _Resolution | None = None
    fps: Annotated[int, Field(ge=1, le=120)] | None = None
    audio: StrictBool | None = None
    model: _ModelId | None = None
    prefer: Prefer | None = None
    normalize: NormalizeMode | None = None


class ShotSpec(_Wire):
    """One shot as the client asks for it."""

    name: Annotated[str, Field(max_length=200)] | None = None
    kind: _Kind = "broll"
    prompt: _Text | StructuredPrompt
    negative: _Text | None = None
    duration_s: Annotated[float, Field(gt=0, le=120)] | None = None
    aspect_ratio: _AspectRatio | None = None
    resolution: _Resolution | None = None
    fps: Annotated[int, Field(ge=1, le=120)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    audio: StrictBool | None = None
    image: _MediaRef | None = None
    last_frame: _MediaRef | None = None
    model: _ModelId | None = None
    prefer: Prefer | None = None
    max_cost_usd: Usd | None = None
    normalize: NormalizeMode | None = None


class JobCreate(_Wire):
    """``POST /v1/jobs`` and ``POST /v1/quote``: a storyboard of shots."""

    shots: Annotated[list[ShotSpec], Field(min_length=1, max_length=MAX_SHOTS)]
    style: _Text | None = None
    negative: _Text | None = None
    defaults: ShotDefaults | None = None
    assemble: StrictBool = False
    webhook_url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)] | None = None
    metadata: Annotated[dict[str, Annotated[str, Field(max_length=500)]], Field(max_length=32)] = (
        Field(default_factory=dict)
    )


# --- plans and quotes ---------------------------------------------------------------


class LintWarning(BaseModel):
    code: str
    message: str
    field: str | None = None


class Adjustment(BaseModel):
    """One parameter the gateway changed to fit the model, and why."""

    field: str
    requested: Any
    applied: Any
    message: str


class RouteCandidate(BaseModel):
    model: str
    status: Literal["selected", "fallback", "skipped"]
    reason: str | None = None
    estimate_usd: Usd | None = Field(
        default=None, description="What the shot costs on this model; none when skipped."
    )


class ShotParams(BaseModel):
    """The parameters actually sent to the model, after normalization."""

    duration_s: float
    aspect_ratio: str
    resolution: str
    fps: int
    seed: int | None = None
    audio: bool = False
    width: int
    height: int


class ShotPlan(BaseModel):
    index: int
    kind: str
    model: str
    route: list[RouteCandidate]
    prompt_sent: str
    negative_sent: str | None = None
    lint: list[LintWarning] = Field(default_factory=list)
    params: ShotParams
    adjustments: list[Adjustment] = Field(default_factory=list)
    estimate_usd: Usd


class Quote(BaseModel):
    shots: list[ShotPlan]
    total_usd: Usd
    hold_usd: Usd | None = Field(
        default=None,
        description="What accepting the job reserves from a prepaid balance: per shot, "
        "the dearest model on its route, so a fallback is always covered.",
    )
    warnings: list[LintWarning] = Field(default_factory=list)


# --- jobs, shots, attempts -------------------------------------------------------------


class Output(BaseModel):
    sha256: str
    bytes: int
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    codec: str | None = None
    content_url: str


class Attempt(BaseModel):
    id: str
    number: int
    model: str
    status: AttemptStatus
    backend_job_id: str | None = None
    progress: float | None = None
    step: int | None = Field(default=None, description="Denoising step done, where reported.")
    total_steps: int | None = None
    queue_position: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime


class Shot(BaseModel):
    id: str
    job_id: str
    index: int
    name: str | None = None
    kind: str
    status: ShotStatus
    model: str
    prompt: str | StructuredPrompt
    plan: ShotPlan
    progress: float | None = None
    step: int | None = Field(
        default=None, description="The running attempt's step (of total_steps), where reported."
    )
    total_steps: int | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    output: Output | None = None
    error_code: str | None = None
    error_message: str | None = None
    estimate_usd: Usd
    cost_usd: Usd | None = None


class Job(BaseModel):
    id: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    shots: list[Shot]
    assemble: bool = False
    final: Output | None = None
    final_error: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    estimate_usd: Usd
    cost_usd: Usd | None = None
    #: Not on the wire: the ``Retry-After`` that came with it, where the SDK kept it.
    _poll_after: float | None = PrivateAttr(default=None)

    @property
    def terminal(self) -> bool:
        return self.status in ("succeeded", "partially_succeeded", "failed", "canceled")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    data: list[T]
    next_cursor: str | None = None


# --- models ---------------------------------------------------------------------------


class ModelCapabilities(BaseModel):
    modes: list[Literal["t2v", "i2v", "flf2v"]]
    durations: list[float] | None = None
    duration_range: tuple[float, float] | None = None
    resolutions: list[str]
    aspect_ratios: list[str]
    fps: list[int]
    audio: bool = False
    negative_prompt: bool = False
    seed: bool = False
    camera_control: bool = False
    max_prompt_chars: int


class ModelPrice(BaseModel):
    per_second_usd: dict[str, Usd] = Field(default_factory=dict)
    per_video_usd: Usd | None = None
    audio_per_second_usd: Usd | None = None
    confirmed: bool = True


class Model(BaseModel):
    id: str
    adapter: str
    vendor_model: str
    description: str | None = None
    capabilities: ModelCapabilities
    price: ModelPrice
    configured: bool
    reason: str | None = None


# --- tenants, keys and billing ----------------------------------------------------------

#: A signed USD amount (a balance can be below zero for an unlimited tenant).
SignedUsd = Annotated[
    Decimal,
    Field(max_digits=16, decimal_places=6),
    PlainSerializer(lambda d: format(d.normalize(), "f"), return_type=str, when_used="json"),
]
Scope = Literal["jobs:read", "jobs:write", "admin"]
_Name = Annotated[str, Field(min_length=1, max_length=100)]
_MarkupBps = Annotated[int, Field(ge=-9999, le=100_000)]
_Positive = Annotated[int, Field(ge=1, le=1_000_000)]


class _Limits(_Wire):
    monthly_budget_usd: Usd | None = Field(
        default=None, description="Spend (captures and open holds) allowed per calendar month."
    )
    max_concurrent_jobs: _Positive | None = None
    requests_per_minute: _Positive | None = None


class TenantCreate(_Limits):
    name: _Name
    prepaid: StrictBool = Field(
        default=True,
        description="Submits need credits (a hold per job, 402 when short); false: "
        "unlimited, never refused, spend still recorded.",
    )
    markup_bps: _MarkupBps = Field(
        default=0, description="On every catalog price: 2000 is +20%, -1000 is 10% off."
    )


class TenantUpdate(_Limits):
    """Only the fields sent change; ``null`` removes a limit."""

    name: _Name | None = None
    prepaid: StrictBool | None = None
    markup_bps: _MarkupBps | None = None


class Tenant(BaseModel):
    id: str
    name: str
    created_at: datetime
    prepaid: bool
    markup_bps: int = 0
    balance_usd: SignedUsd
    monthly_budget_usd: Usd | None = None
    max_concurrent_jobs: int | None = None
    requests_per_minute: int | None = None


class ApiKeyCreate(_Limits):
    name: _Name | None = None
    scopes: list[Scope] | None = Field(
        default=None, description="Default: jobs:read and jobs:write."
    )
    expires_at: datetime | None = None


class ApiKey(BaseModel):
    id: str
    tenant_id: str
    name: str | None = None
    prefix: str = Field(description="The key's visible start, for support.")
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    monthly_budget_usd: Usd | None = None
    max_concurrent_jobs: int | None = None
    requests_per_minute: int | None = None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class CreditCreate(_Wire):
    amount_usd: Annotated[Usd, Field(gt=0)]
    note: Annotated[str, Field(min_length=1, max_length=500)]


class Credit(BaseModel):
    id: int
    tenant_id: str
    amount_usd: Usd
    note: str | None = None
    created_at: datetime
    balance_usd: SignedUsd = Field(description="The tenant's balance now.")


class Balance(BaseModel):
    tenant_id: str
    prepaid: bool
    balance_usd: SignedUsd = Field(description="Available: credits - captures - open holds.")
    credits_usd: Usd
    captured_usd: Usd
    held_usd: Usd = Field(description="Open holds: reserved for jobs still running.")
    monthly_budget_usd: Usd | None = None
    month_spent_usd: Usd = Field(description="This calendar month's captures and open holds.")


class UsageRow(BaseModel):
    group: str = Field(description="The model id, the day (YYYY-MM-DD) or the key id.")
    shots: int
    cost_usd: Usd


class Usage(BaseModel):
    start: datetime
    end: datetime
    group_by: Literal["model", "day", "key"]
    rows: list[UsageRow]
    total_usd: Usd


# --- errors ---------------------------------------------------------------------------


class ProblemField(BaseModel):
    field: str
    message: str
    allowed: Any | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, plus a stable ``code`` and per-field errors."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemField] = Field(default_factory=list)
    shortfall_usd: Usd | None = Field(
        default=None, description="insufficient_credits: how much more the job needs."
    )
    balance_usd: Usd | None = Field(
        default=None, description="insufficient_credits: the balance available now."
    )
    limit_scope: Literal["tenant", "key"] | None = Field(
        default=None, description="A limit's problem: whose limit it is."
    )
    monthly_budget_usd: Usd | None = Field(
        default=None, description="monthly_budget_exceeded: the budget."
    )
    month_spent_usd: Usd | None = Field(
        default=None, description="monthly_budget_exceeded: spent or held this month."
    )
    needed_usd: Usd | None = Field(
        default=None, description="monthly_budget_exceeded: what the job reserves."
    )
    max_concurrent_jobs: int | None = Field(default=None, description="too_many_jobs: the limit.")
    requests_per_minute: int | None = Field(default=None, description="rate_limited: the limit.")
