"""Serve a stored object over HTTP with single byte ranges (what a <video> element seeks with),
or redirect to a signed storage URL that serves them itself."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from gateway.services.content import ContentObject
from gateway.services.errors import ServiceError
from gateway.storage import ObjectStore, StorageConfigError, StorageServiceError, StoredObject

__all__ = ["parse_range", "stream_object"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")  # 19 digits: any real size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range asked for, None for the whole object.

    Several ranges, or a header we do not understand, are answered with the whole
    object (RFC 9110 lets a server ignore Range); an unsatisfiable one raises 416.
    """
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None:
        return None
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> ServiceError:
    return ServiceError(
        416,
        "range_not_satisfiable",
        f"The object has {size} bytes.",
        headers={"Content-Range": f"bytes */{size}"},
    )


async def stream_object(
    store: ObjectStore,
    obj: ContentObject,
    request: Request,
    *,
    filename: str,
    redirect_ttl_s: int | None = None,
) -> Response:
    """The object's bytes, or with ``redirect_ttl_s`` a 307 to a signed URL for them when
    the store has signed URLs. Either way the stored object is checked first: gone is 410,
    changed since it was recorded (size or sha256) is 500 ``output_corrupt``."""
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{obj.sha256}"',
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "private, max-age=3600",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    await _check_stored(store, obj)  # before a 200 or a redirect promises any bytes
    if redirect_ttl_s is not None:
        url = await _signed(store, obj, redirect_ttl_s, filename)
        if url is not None:
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    span = parse_range(request.headers.get("range"), obj.bytes)
    if span is None:
        headers["Content-Length"] = str(obj.bytes)
        body = store.get_stream(obj.key)
        return StreamingResponse(body, media_type=obj.content_type, headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{obj.bytes}"
    headers["Content-Length"] = str(end - start + 1)
    body = store.get_stream(obj.key, start=start, end=end)
    return StreamingResponse(body, status_code=206, media_type=obj.content_type, headers=headers)


async def _check_stored(store: ObjectStore, obj: ContentObject) -> None:
    head: StoredObject | None = await _storage_call(store.head(obj.key))
    if head is None:
        raise ServiceError(
            410, "output_missing", f"The stored output {obj.key} is gone from storage."
        )
    if (head.sha256, head.bytes) != (obj.sha256, obj.bytes):
        raise ServiceError(
            500,
            "output_corrupt",
            f"The stored output {obj.key} was changed in storage: it has {head.bytes} bytes "
            f"with sha256 {head.sha256}; {obj.bytes} bytes with sha256 {obj.sha256} were stored.",
        )


async def _signed(store: ObjectStore, obj: ContentObject, ttl_s: int, filename: str) -> str | None:
    url: str | None = await _storage_call(store.signed_url(obj.key, ttl_s, filename=filename))
    return url


async def _storage_call(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except (StorageServiceError, StorageConfigError) as exc:
        log.warning("object storage failed: %s", exc)  # its details stay in the log
        raise ServiceError(
            503, "storage_unavailable", "Object storage did not answer; try again shortly."
        ) from exc
