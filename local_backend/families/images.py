"""Input images arrive as ``data:`` URIs; every family decodes them the same way."""

from __future__ import annotations

import base64
import binascii
import io
import re

from PIL import Image, ImageOps

from local_backend.families.base import InvalidParams

__all__ = ["MAX_IMAGE_BYTES", "decode_data_uri"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*),", re.ASCII)


def decode_data_uri(uri: str, field: str) -> Image.Image:
    """An RGB image from a ``data:`` URI; the backend never fetches URLs itself."""
    match = _DATA_URI.match(uri)
    if match is None:
        raise InvalidParams(field, f"{field} must be a data: URI (the backend fetches no URLs)")
    payload = uri[match.end() :]
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise InvalidParams(field, f"{field} is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        if ";base64" in match["params"]:
            raw = base64.b64decode(payload, validate=True)
        else:
            raw = payload.encode("latin-1")
        with Image.open(io.BytesIO(raw)) as image:
            return ImageOps.exif_transpose(image).convert("RGB")
    except (binascii.Error, UnicodeEncodeError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidParams(field, f"{field} is not a readable image: {exc}") from exc
