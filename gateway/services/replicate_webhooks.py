"""Replicate's webhook signatures (Standard Webhooks) and the secret that keys them.

Source: replicate-python's ``replicate/webhook.py`` (``WebhookSigningSecret``,
``Webhooks.validate``) and ``webhooks.default.secret()``, as summarised in the vendor
reference (Replicate section):

- headers ``webhook-id``, ``webhook-timestamp`` (unix seconds) and ``webhook-signature``:
  space-separated ``v1,<base64 HMAC-SHA256>`` entries over ``{id}.{timestamp}.{body}``,
  keyed with the base64-decoded part of a ``whsec_...`` secret; timestamps more than
  5 minutes away are refused;
- the secret is the account's: ``GET /v1/webhooks/default/secret`` with the API token
  (``Authorization: Bearer``) answers ``{"key": "whsec_..."}``.

``REELGATE_REPLICATE_WEBHOOK_SECRET`` sets the secret. Without it, and with Replicate
configured, :class:`ReplicateWebhooks` asks Replicate for it on the first Replicate
callback and keeps it; a signature it does not verify asks again (the secret may have
been rotated), at most once a minute, as does a failed fetch.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import httpx

__all__ = [
    "ReplicateWebhooks",
    "SecretUnavailable",
    "secret_key",
    "signed_content",
    "verify_standard_webhook",
]

TOLERANCE_S = 300
#: After a failed fetch, or a signature the kept secret does not verify (rotated?), the
#: secret is asked for again at most this often: forged calls cannot flood Replicate.
RETRY_S = 60


class SecretUnavailable(Exception):
    """Replicate's webhook signing secret could not be fetched."""


def secret_key(secret: str) -> bytes | None:
    """The HMAC key of a ``whsec_<base64>`` secret; None when it is not one."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        return None
    return key or None


def signed_content(
    headers: Mapping[str, str], body: bytes, *, now: float
) -> tuple[bytes, list[str]] | None:
    """``(signed content, v1 signatures)`` from a call's headers, or None when a header is
    missing or malformed or the timestamp is more than 5 minutes away from ``now``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    try:
        sent = int(lowered.get("webhook-timestamp", ""))
    except ValueError:
        return None
    signatures = [
        sig
        for version, _, sig in (
            e.partition(",") for e in lowered.get("webhook-signature", "").split()
        )
        if version == "v1" and sig
    ]
    if not msg_id or not signatures or abs(now - sent) > TOLERANCE_S:
        return None
    return f"{msg_id}.{sent}.".encode() + body, signatures


def _matches(key: bytes, content: bytes, signatures: list[str]) -> bool:
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    return any(hmac.compare_digest(sig.encode(), expected) for sig in signatures)


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> bool:
    key = secret_key(secret)
    signed = signed_content(headers, body, now=time.time() if now is None else now)
    return key is not None and signed is not None and _matches(key, *signed)


class ReplicateWebhooks:
    """Verifies Replicate's callbacks with the secret at ``url`` (Replicate's
    ``/v1/webhooks/default/secret``), fetched with ``client`` and ``api_key``."""

    def __init__(
        self,
        url: str,
        api_key: str,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._client = client
        self._clock = clock
        self._key: bytes | None = None
        self._tried = -float("inf")
        self._error = "not fetched yet"
        self._lock = asyncio.Lock()

    async def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True for a genuine call. Raises :class:`SecretUnavailable` when the secret cannot
        be had; a call without valid headers is refused before any fetch."""
        signed = signed_content(headers, body, now=self._clock())
        if signed is None:
            return False
        if _matches(await self._current(), *signed):
            return True
        # Not our secret: it may have been rotated since the last fetch.
        return _matches(await self._current(refresh=True), *signed)

    async def _current(self, *, refresh: bool = False) -> bytes:
        async with self._lock:
            now = self._clock()
            if self._key is not None and (not refresh or now - self._tried < RETRY_S):
                return self._key
            if now - self._tried >= RETRY_S:
                self._tried = now
                await self._fetch()
            if self._key is not None:
                return self._key
            raise SecretUnavailable(self._error)

    async def _fetch(self) -> None:
        try:
            response = await self._client.get(self._url, headers=self._auth)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self._error = f"GET {self._url}: {exc}"
            return
        secret = document.get("key") if isinstance(document, dict) else None
        key = (
            secret_key(secret) if isinstance(secret, str) and secret.startswith("whsec_") else None
        )
        if key is None:
            self._error = f"GET {self._url}: no whsec_ signing secret in the answer"
            return
        self._key = key
