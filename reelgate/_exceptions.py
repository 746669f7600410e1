"""Every error the SDK raises, translated once from httpx and HTTP statuses.

A job that ran and failed is *not* an exception: ``jobs.wait`` returns it with
``status="failed"``. Only transport, protocol and usage problems raise::

    ReelgateError                       configuration and usage errors (e.g. no API key)
    ├── APIConnectionError              the request never got an HTTP answer
    │   └── APITimeoutError             ... because it timed out
    ├── APIResponseValidationError      a 2xx body that does not match reelgate.types
    ├── APIStatusError                  any non-2xx answer; carries status_code, problem, response
    │   ├── BadRequestError             400
    │   ├── AuthenticationError         401
    │   ├── PaymentRequiredError        402 (insufficient credits)
    │   ├── PermissionDeniedError       403
    │   ├── NotFoundError               404
    │   ├── ConflictError               409 (e.g. an Idempotency-Key reused with another body)
    │   ├── UnprocessableEntityError    422
    │   ├── RateLimitError              429
    │   └── InternalServerError         >= 500
    └── WaitTimeout                     jobs.wait ran out of time; carries the last Job
"""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from .types import Job, Problem

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReelgateError",
    "UnprocessableEntityError",
    "WaitTimeout",
]


class ReelgateError(Exception):
    """Base of every SDK error; catch this to catch them all."""


class APIConnectionError(ReelgateError):
    """No HTTP answer: DNS, refused connection, reset, TLS, or a broken stream."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    pass


class APIResponseValidationError(ReelgateError):
    """The server answered 2xx with a body the wire types reject (version skew?)."""

    def __init__(self, message: str, *, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response
        self.status_code = response.status_code


class APIStatusError(ReelgateError):
    """A non-2xx answer. ``problem`` is the parsed problem+json body, when there was one."""

    def __init__(self, message: str, *, response: httpx.Response, problem: Problem | None) -> None:
        super().__init__(message)
        self.response = response
        self.status_code = response.status_code
        self.problem = problem
        self.code = problem.code if problem else None
        self.request_id = response.headers.get("x-request-id")


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PaymentRequiredError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class ConflictError(APIStatusError):
    pass


class UnprocessableEntityError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


class WaitTimeout(ReelgateError):
    """``jobs.wait`` gave up; the job keeps running on the server. ``job`` is the last seen."""

    def __init__(self, message: str, *, job: Job) -> None:
        super().__init__(message)
        self.job = job


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error(response: httpx.Response) -> APIStatusError:
    """Translate a non-2xx response (body already read) into the matching exception."""
    problem = _parse_problem(response)
    status = response.status_code
    cls = InternalServerError if status >= 500 else _BY_STATUS.get(status, APIStatusError)
    return cls(_message(response, problem), response=response, problem=problem)


def _parse_problem(response: httpx.Response) -> Problem | None:
    try:
        return Problem.model_validate_json(response.content)
    except (ValidationError, ValueError):
        return None


def _message(response: httpx.Response, problem: Problem | None) -> str:
    """One line a person can act on: status, title, detail, then each field error."""
    head = f"{response.status_code} {response.reason_phrase}".strip()
    if problem is None:
        body = response.text.strip()
        return f"{head}: {body[:500]}" if body else head
    head = f"{response.status_code} {problem.title} [{problem.code}]"
    details = [problem.detail] if problem.detail else []
    for err in problem.errors:
        allowed = f" (allowed: {err.allowed})" if err.allowed is not None else ""
        details.append(f"{err.field}: {err.message}{allowed}")
    return f"{head}: {'; '.join(details)}" if details else head


def connection_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    """Translate an httpx transport failure; timeouts get their own class."""
    where = f"{request.method} {request.url}"
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"timed out: {where}", request=request)
    return APIConnectionError(f"connection error: {where}: {exc!r}", request=request)
