"""Every error leaves as ``application/problem+json`` with a stable ``code``.

One translation point for FastAPI's validation errors, our service errors and
anything unexpected (a 500 that never carries a traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.services.errors import ServiceError
from gateway.validation import field_issues
from reelgate.types import Problem, ProblemField

__all__ = ["PROBLEM_JSON", "install_problem_handlers", "problem_response", "responses"]

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem statuses a route can answer.

    A route that checks an API key's scope (403) also answers 429: the key's or its
    tenant's requests per minute.
    """
    out: dict[int | str, dict[str, Any]] = {}
    limited = (429,) if 403 in statuses and 429 not in statuses else ()
    for status in (*statuses, *limited, 500):
        out[status] = {
            "model": Problem,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def problem_response(
    status: int,
    code: str,
    detail: str | None,
    *,
    errors: list[ProblemField] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = Problem(
        title=_TITLES.get(status, "Error"),
        status=status,
        code=code,
        detail=detail,
        instance=instance,
        errors=errors or [],
        **(extra or {}),
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, str, list[ProblemField]]:
    raw = list(exc.errors())
    for err in raw:
        if err.get("type") == "json_invalid":
            where = (err.get("ctx") or {}).get("error", "invalid JSON")
            return (
                400,
                "malformed_json",
                f"The body is not valid JSON: {where}.",
                [ProblemField(field="body", message=str(where))],
            )
    errors = [
        ProblemField(field=path or "body", message=msg, allowed=allowed)
        for path, msg, _, allowed in field_issues(raw, strip=1)
    ]
    fields = ", ".join(dict.fromkeys(e.field for e in errors))
    return 422, "validation_error", f"Invalid fields: {fields}.", errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.code,
            exc.detail,
            errors=exc.errors,
            instance=request.url.path,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, detail, errors = _validation_errors(exc)
        return problem_response(status, code, detail, errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "http_error")
        return problem_response(
            exc.status_code,
            code,
            str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal_error",
            "The gateway hit an unexpected error; it has been logged.",
            instance=request.url.path,
        )
