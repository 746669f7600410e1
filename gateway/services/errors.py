"""Errors a service raises for the API layer to turn into problem+json."""

from __future__ import annotations

from typing import Any

from reelgate.types import ProblemField

__all__ = ["ServiceError"]


class ServiceError(Exception):
    """A request the gateway refuses, with an HTTP status and a stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[ProblemField] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        #: Problem extension members (``shortfall_usd``, ...).
        self.extra = extra or {}
