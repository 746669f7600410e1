"""Backend adapters: the contract in :mod:`adapters.base`, one module per backend.

Only the contract is re-exported here; each backend module (``adapters.local``,
...) is imported by the gateway's registry when configured, so importing this
package never loads every vendor.
"""

from adapters.base import (
    Adapter,
    AdapterError,
    BackendFailure,
    BackendJobLost,
    ContentRejected,
    Failure,
    FailureClass,
    FatalError,
    GenerationRequest,
    InvalidInput,
    JobState,
    JobStatus,
    RateLimited,
    RetryableError,
    Submission,
)

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
