"""The backend contract every adapter implements.

An adapter turns one normalized :class:`GenerationRequest` into a backend job and
reports on it. It reads no environment, touches no database and owns no retries:
the gateway's engine does those. The adapter's single job beyond the wire format
is to classify errors once, here, into this tree::

    AdapterError                    (never raised itself)
    ├── RetryableError              retry the same backend later (429, 5xx, timeouts)
    │   └── RateLimited             ... with the backend's own Retry-After
    ├── BackendFailure              this backend cannot do it: try the next candidate
    │   └── BackendJobLost          the backend no longer knows the job id
    └── FatalError                  the request itself is wrong: fail the shot
        ├── InvalidInput            bad parameters or inputs
        └── ContentRejected         a content or safety policy refused it

A job that *ran* and failed is data, not an exception: :meth:`Adapter.poll`
returns a :class:`JobStatus` whose ``failure`` carries the same classification.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Adapter",
    "AdapterError",
    "BackendFailure",
    "BackendJobLost",
    "ContentRejected",
    "Failure",
    "FailureClass",
    "FatalError",
    "GenerationRequest",
    "InvalidInput",
    "JobState",
    "JobStatus",
    "RateLimited",
    "RetryableError",
    "Submission",
]

JobState = Literal["queued", "running", "succeeded", "failed", "canceled"]
FailureClass = Literal["retryable", "fallback", "fatal"]


class AdapterError(Exception):
    """Base of the adapter error tree; see the module docstring."""

    retryable: bool = False
    fallback: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "backend_error",
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retry_after = retry_after
        #: The request may have reached the backend (a timeout or a dropped connection
        #: after sending): a failed *submit* may still have created a job.
        self.outcome_unknown = outcome_unknown

    @property
    def failure_class(self) -> FailureClass:
        if self.retryable:
            return "retryable"
        return "fallback" if self.fallback else "fatal"


class RetryableError(AdapterError):
    retryable = True


class RateLimited(RetryableError):
    pass


class BackendFailure(AdapterError):
    fallback = True


class BackendJobLost(BackendFailure):
    """The backend answered that it does not know the job (e.g. it restarted)."""


class FatalError(AdapterError):
    pass


class InvalidInput(FatalError):
    pass


class ContentRejected(FatalError):
    pass


class GenerationRequest(BaseModel):
    """One normalized shot, as the gateway hands it to an adapter."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(description="Stable per attempt; backends that dedupe use it.")
    model: str = Field(description="The backend's own model name.")
    prompt: str
    negative_prompt: str | None = None
    duration_s: float
    fps: int
    width: int
    height: int
    aspect_ratio: str
    resolution: str
    seed: int | None = None
    audio: bool = False
    image: str | None = Field(default=None, description="URL or data: URI of the first frame.")
    last_frame: str | None = None
    kind: str = "broll"
    title: str | None = Field(default=None, description="Short label, e.g. the shot's name.")
    camera: str | None = Field(default=None, description="The camera words of the prompt.")
    callback_url: str | None = None


class Submission(BaseModel):
    """A backend accepted the job."""

    backend_job_id: str
    poll_after_s: float = 1.0


class Failure(BaseModel):
    code: str
    message: str
    failure_class: FailureClass


class JobStatus(BaseModel):
    """What a backend says about a job, mapped losslessly into our states."""

    state: JobState
    progress: float | None = Field(default=None, ge=0, le=1)
    step: int | None = None
    total_steps: int | None = None
    queue_position: int | None = None
    next_poll_s: float = Field(default=2.0, ge=0, description="The backend's polling hint.")
    output_url: str | None = None
    failure: Failure | None = None
    cost_usd_micros: int | None = Field(default=None, description="Vendor-reported cost.")
    vendor_usage: Mapping[str, int | str] | None = Field(
        default=None,
        description="What the vendor reports it billed, in its own units (fal billable "
        "units, Kling unit deduction, tokens), priced or not.",
    )
    raw_state: str | None = None


@runtime_checkable
class Adapter(Protocol):
    """What the engine needs from a backend. Implementations own one httpx client."""

    name: str
    #: True when resubmitting the same ``request_id`` cannot start a second job.
    idempotent_submit: bool
    supports_cancel: bool

    def configured_models(self) -> set[str] | None:
        """Backend model names this adapter serves, or None when it serves any."""
        ...

    async def submit(self, request: GenerationRequest) -> Submission: ...

    async def poll(self, backend_job_id: str) -> JobStatus: ...

    async def cancel(self, backend_job_id: str) -> None: ...

    def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        """Stream the finished output's bytes (an async generator)."""
        ...

    async def aclose(self) -> None: ...
