"""Vendor callbacks: a signed "your job moved" that makes the engine poll at once.

A callback is never trusted for state: it only wakes the shot, whose next step asks
the vendor. So a forged or replayed callback can at most cause one extra poll, a
callback for a finished attempt is a no-op, and a lost one costs only the polling
delay (polling stays on as the backstop). Where the vendor signs its webhooks, the
signature is checked anyway, so a flood of forged calls is refused before it reaches
the database.

Replicate signs with Standard Webhooks (``gateway.services.replicate_webhooks``) under
the account's ``whsec_...`` secret: the configured one, else the one Replicate's API
hands out, fetched on the first Replicate callback. fal signs every webhook with
Ed25519 under keys from its JWKS (``gateway.services.fal_webhooks``). When a vendor's
secret or keys cannot be fetched its callback is answered 503, which the vendor
retries and polling covers meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlmodel import select

from gateway.db import Database
from gateway.services.errors import ServiceError
from gateway.services.fal_webhooks import FalWebhooks, KeysUnavailable
from gateway.services.replicate_webhooks import (
    ReplicateWebhooks,
    SecretUnavailable,
    verify_standard_webhook,
)
from gateway.tables import Attempt

__all__ = ["CallbackService", "verify_standard_webhook"]

_DONE = frozenset({"succeeded", "failed", "canceled", "unknown"})


class CallbackService:
    def __init__(
        self,
        db: Database,
        wake: Callable[[str], bool] | None,
        secrets: Mapping[str, str],
        *,
        fal: FalWebhooks | None = None,
        replicate: ReplicateWebhooks | None = None,
    ) -> None:
        self._db = db
        self._wake = wake
        #: vendor -> configured webhook signing secret (wins over a fetched one)
        self._secrets = secrets
        #: the vendors' own signing keys, fetched from them; a vendor with neither a
        #: secret nor a verifier here is not verified
        self._verifiers: dict[str, FalWebhooks | ReplicateWebhooks] = {
            name: v for name, v in (("fal", fal), ("replicate", replicate)) if v is not None
        }

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
        secret = self._secrets.get(vendor)
        if secret is not None:
            return verify_standard_webhook(secret, headers, body)
        verifier = self._verifiers.get(vendor)
        if verifier is None:
            return True
        try:
            return await verifier.verify(headers, body)
        except (KeysUnavailable, SecretUnavailable) as exc:
            what = "secret" if isinstance(exc, SecretUnavailable) else "keys"
            raise ServiceError(
                503,
                "keys_unavailable",
                f"{vendor}'s webhook signing {what} could not be fetched ({exc}); the call "
                "cannot be verified now. The job is still polled.",
                headers={"Retry-After": "60"},
            ) from None

    def _attempt(self, attempt_id: str) -> tuple[str, str, str] | None:
        with self._db.session() as s:
            row = s.exec(
                select(Attempt.adapter, Attempt.shot_id, Attempt.status).where(
                    Attempt.id == attempt_id
                )
            ).first()
        return None if row is None else (row[0], row[1], row[2])
