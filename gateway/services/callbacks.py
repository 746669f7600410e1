"""Vendor callbacks: a signed "your job moved" that makes the engine poll at once.

A callback is never trusted for state: it only wakes the shot, whose next step asks
the vendor. So a forged or replayed callback can at most cause one extra poll, a
callback for a finished attempt is a no-op, and a lost one costs only the polling
delay (polling stays on as the backstop). Where the vendor signs its webhooks and
a secret is configured, the signature is checked anyway, so a flood of forged calls
is refused before it reaches the database.

Replicate signs with Standard Webhooks: ``webhook-signature`` carries ``v1,<base64
HMAC-SHA256>`` entries over ``{webhook-id}.{webhook-timestamp}.{body}``, keyed with
the base64 part of a ``whsec_...`` secret; timestamps older than 5 minutes are refused.
fal signs every webhook with Ed25519 under keys from its JWKS (``gateway.services.
fal_webhooks``); when that key set cannot be fetched a fal callback is answered 503,
which fal retries and polling covers meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from sqlmodel import select

from gateway.db import Database
from gateway.services.errors import ServiceError
from gateway.services.fal_webhooks import FalWebhooks, KeysUnavailable
from gateway.tables import Attempt

__all__ = ["CallbackService", "verify_standard_webhook"]

_TOLERANCE_S = 300
_DONE = frozenset({"succeeded", "failed", "canceled", "unknown"})


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> bool:
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    try:
        sent = int(stamp)
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (ValueError, binascii.Error):
        return False
    if not msg_id or abs((now if now is not None else time.time()) - sent) > _TOLERANCE_S:
        return False
    signed = f"{msg_id}.{sent}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(sig, expected)
        for version, _, sig in (entry.partition(",") for entry in signatures.split())
    )


class CallbackService:
    def __init__(
        self,
        db: Database,
        wake: Callable[[str], bool] | None,
        secrets: Mapping[str, str],
        *,
        fal: FalWebhooks | None = None,
    ) -> None:
        self._db = db
        self._wake = wake
        #: vendor -> webhook signing secret (vendors without one are not verified)
        self._secrets = secrets
        #: fal's key set; None: fal's callbacks are not verified
        self._fal = fal

    async def receive(
        self, vendor: str, attempt_id: str, headers: Mapping[str, str], body: bytes
    ) -> bool:
        """True when a running shot was woken; False for a no-op (finished, not here)."""
        if not await self._verified(vendor, headers, body):
            raise ServiceError(401, "bad_signature", f"The {vendor} webhook signature is invalid.")
        row = await self._db.run(self._attempt, attempt_id)
        if row is None or row[0] != vendor:
            raise ServiceError(404, "not_found", f"No {vendor} attempt {attempt_id!r}.")
        _, shot_id, status = row
        if status in _DONE or self._wake is None:
            return False
        return self._wake(shot_id)

    async def _verified(self, vendor: str, headers: Mapping[str, str], body: bytes) -> bool:
        if vendor == "fal" and self._fal is not None:
            try:
                return await self._fal.verify(headers, body)
            except KeysUnavailable as exc:
                raise ServiceError(
                    503,
                    "keys_unavailable",
                    f"fal's webhook signing keys could not be fetched ({exc}); the call "
                    "cannot be verified now. The job is still polled.",
                    headers={"Retry-After": "60"},
                ) from None
        secret = self._secrets.get(vendor)
        return secret is None or verify_standard_webhook(secret, headers, body)

    def _attempt(self, attempt_id: str) -> tuple[str, str, str] | None:
        with self._db.session() as s:
            row = s.exec(
                select(Attempt.adapter, Attempt.shot_id, Attempt.status).where(
                    Attempt.id == attempt_id
                )
            ).first()
        return None if row is None else (row[0], row[1], row[2])
