"""Reading a request's image inputs, the same way for every vendor that takes files by URL."""

from __future__ import annotations

from typing import Literal

from adapters.base import GenerationRequest, InvalidInput

__all__ = ["Mode", "file_input", "input_mode"]

Mode = Literal["t2v", "i2v", "flf"]


def input_mode(request: GenerationRequest, vendor: str) -> Mode:
    """Text only, a first frame, or first and last frames."""
    if request.last_frame and not request.image:
        raise InvalidInput(
            f"last_frame needs image (the first frame) on {vendor}", code="invalid_input"
        )
    if request.image:
        return "flf" if request.last_frame else "i2v"
    return "t2v"


def file_input(value: str | None, field: str) -> str:
    """An http(s) URL or a data: URI, which these vendors fetch or decode themselves."""
    if value is None or not value.startswith(("https://", "http://", "data:")):
        raise InvalidInput(f"{field} must be an http(s) URL or a data: URI", code="invalid_input")
    return value
