"""fal's webhook signatures: Ed25519 over the request id, user id, timestamp and body hash.

Source: fal's "Webhooks" page, section "Verifying Your Webhook"
(https://docs.fal.ai/model-apis/model-endpoints/webhooks). The copy of that page we
could read stops at the section's opening (and says a failed delivery is retried 10
times within 2 hours); the steps below are as quoted from it by several independent
verifiers, one noting it was checked against the live page in July 2026. They agree:

- headers ``X-Fal-Webhook-Request-Id``, ``X-Fal-Webhook-User-Id``,
  ``X-Fal-Webhook-Timestamp`` (unix seconds) and ``X-Fal-Webhook-Signature`` (hex);
- refuse a timestamp more than 300 s from now, either way;
- the signed message is ``"\\n".join([request_id, user_id, timestamp,
  sha256(raw body).hexdigest()])`` in UTF-8;
- the keys are a JWKS (``keys[].x``: a base64url raw Ed25519 public key), cached for
  at most 24 hours; a signature that verifies under any of them is valid.

Recent quotes name the JWKS ``https://rest.fal.ai/.well-known/jwks.json``, older ones
``https://rest.alpha.fal.ai/.well-known/jwks.json``; ``REELGATE_FAL_JWKS_URL`` picks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Callable, Mapping

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["FalWebhooks", "KeysUnavailable", "parse_jwks", "signed_message", "verify_signature"]

TOLERANCE_S = 300
#: fal: cache the key set for no more than 24 hours.
CACHE_S = 24 * 3600
#: After a failed fetch, or a signature no cached key verifies (fal rotated its keys?),
#: the key set is asked for again at most this often: forged calls cannot flood fal.
RETRY_S = 60
_HEADERS = ("request-id", "user-id", "timestamp", "signature")


class KeysUnavailable(Exception):
    """fal's key set could not be fetched or held no Ed25519 key."""


def parse_jwks(document: object) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document; other and malformed entries are skipped."""
    entries = document.get("keys") if isinstance(document, dict) else None
    keys = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("crv") != "Ed25519":
            continue
        x = entry.get("x")
        try:  # ``x`` unpadded (RFC 7518) or padded (reported of fal's live set)
            raw = base64.urlsafe_b64decode(str(x).rstrip("=") + "==")
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError:  # binascii.Error too
            continue
    return keys


def signed_message(
    headers: Mapping[str, str], body: bytes, *, now: float
) -> tuple[bytes, bytes] | None:
    """``(message, signature)`` from a call's headers, or None when a header is missing,
    malformed or the timestamp is more than 300 s away from ``now``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    request_id, user_id, stamp, signature = (
        lowered.get(f"x-fal-webhook-{name}", "") for name in _HEADERS
    )
    try:
        sent = int(stamp)
        sig = bytes.fromhex(signature)
    except ValueError:
        return None
    if not request_id or not user_id or len(sig) != 64 or abs(now - sent) > TOLERANCE_S:
        return None
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([request_id, user_id, stamp, digest]).encode(), sig


def verify_signature(keys: list[Ed25519PublicKey], message: bytes, signature: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


class FalWebhooks:
    """Verifies fal's callbacks against fal's JWKS at ``url``, fetched with ``client``."""

    def __init__(
        self, url: str, client: httpx.AsyncClient, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._url = url
        self._client = client
        self._clock = clock
        self._keys: list[Ed25519PublicKey] = []
        self._fetched = -float("inf")
        self._tried = -float("inf")
        self._error = "not fetched yet"
        self._lock = asyncio.Lock()

    async def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True for a genuine call. Raises :class:`KeysUnavailable` when the key set cannot
        be had; a call without valid headers is refused before any fetch."""
        signed = signed_message(headers, body, now=self._clock())
        if signed is None:
            return False
        if verify_signature(await self._current(), *signed):
            return True
        # An unknown key: fal may have rotated its keys since the last fetch.
        return verify_signature(await self._current(refresh=True), *signed)

    async def _current(self, *, refresh: bool = False) -> list[Ed25519PublicKey]:
        async with self._lock:
            now = self._clock()
            fresh = now - self._fetched < CACHE_S
            if fresh and (not refresh or now - self._tried < RETRY_S):
                return self._keys
            if now - self._tried >= RETRY_S:
                self._tried = now
                await self._fetch(now)
            if now - self._fetched < CACHE_S:
                return self._keys
            raise KeysUnavailable(self._error)

    async def _fetch(self, now: float) -> None:
        try:
            response = await self._client.get(self._url)
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            self._error = f"GET {self._url}: {exc}"
            return
        if not keys:
            self._error = f"GET {self._url}: no Ed25519 key in the key set"
            return
        self._keys, self._fetched = keys, now
