"""Serve a stored object over HTTP with single byte ranges (what a <video> element seeks with)."""

from __future__ import annotations

import re

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from gateway.services.content import ContentObject
from gateway.services.errors import ServiceError
from gateway.storage import ObjectStore

__all__ = ["parse_range", "stream_object"]

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
    store: ObjectStore, obj: ContentObject, request: Request, *, filename: str
) -> Response:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{obj.sha256}"',
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "private, max-age=3600",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    if await store.head(obj.key) is None:  # checked before a 200 promises any bytes
        raise ServiceError(
            410, "output_missing", f"The stored output {obj.key} is gone from storage."
        )
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
