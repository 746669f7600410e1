"""The reelgate Python SDK: one client for every video-generation model behind a gateway.

from reelgate import Client

with Client() as client:  # REELGATE_BASE_URL, REELGATE_API_KEY
    job = client.jobs.wait(client.jobs.create({"shots": [{"prompt": "..."}]}))
"""

from ._client import AsyncClient, Client
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ReelgateError,
    UnprocessableEntityError,
    WaitTimeout,
)
from ._version import __version__
from .types import (
    Attempt,
    Job,
    JobCreate,
    Model,
    Output,
    Page,
    Problem,
    Quote,
    Shot,
    ShotDefaults,
    ShotSpec,
    StructuredPrompt,
)

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "InternalServerError",
    "Job",
    "JobCreate",
    "Model",
    "NotFoundError",
    "Output",
    "Page",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "Problem",
    "Quote",
    "RateLimitError",
    "ReelgateError",
    "Shot",
    "ShotDefaults",
    "ShotSpec",
    "StructuredPrompt",
    "UnprocessableEntityError",
    "WaitTimeout",
    "__version__",
]
