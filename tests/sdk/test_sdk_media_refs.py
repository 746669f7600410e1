"""Image inputs are checked on the wire: a URL, or a data: URI holding the image it claims."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from reelgate.types import ShotSpec

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 "


def uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "ref",
    ["https://cdn.example/a.png", "http://10.0.0.2/a.jpg", uri("image/png", PNG),
     uri("image/webp", WEBP), uri("image/jpeg", b"\xff\xd8\xff\xe0rest")],
)  # fmt: skip
def test_accepted(ref: str) -> None:
    assert ShotSpec(prompt="a kite", image=ref, last_frame=ref).image == ref


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("img.png", "http(s) URL or a data: URI"),
        ("ftp://x/a.png", "http(s) URL or a data: URI"),
        ("data:image/png,rawbytes", "base64 with a media type"),
        ("data:text/plain;base64,aGk=", "base64 with a media type"),
        ("data:image/png;base64,!!!", "base64 is malformed"),
        (uri("image/png", b"not an image"), "not a png image"),
        (uri("image/webp", b"RIFF\x00\x00\x00\x00AVI LIST"), "not a webp image"),
    ],
)
def test_refused_with_the_reason(ref: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        ShotSpec(prompt="a kite", image=ref)
    error = info.value.errors()[0]
    assert error["loc"] == ("image",) and message in error["msg"]
