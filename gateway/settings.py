"""Typed configuration: ``REELGATE_*`` environment variables, nested with ``__``.

Nothing reads the environment at import time; the CLI or the app factory builds a
:class:`Settings` once and passes it down.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["VENDORS", "ConfigError", "Settings"]

#: Vendor adapters (``adapters.<name>``), each configured by ``REELGATE_<NAME>_API_KEY``.
VENDORS = ("google", "runway", "luma", "kling", "fal", "replicate", "minimax", "seedance")


class ConfigError(ValueError):
    """A setting that points at something unusable (a missing or invalid file)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELGATE_", env_nested_delimiter="__")

    data_dir: Path = Path("./reelgate-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in the data dir."
    )
    storage_url: str | None = Field(
        default=None,
        description="file://... (default: objects/ in the data dir) or "
        "s3://bucket/prefix[?sse=...&sse_kms_key_id=...&storage_class=...&addressing_style=path"
        "&part_size_mb=8]; S3's endpoint, region and credentials come from the standard AWS "
        "settings (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_PROFILE, ...).",
    )
    storage_redirect: bool = Field(
        default=False,
        description="Content endpoints answer 307 to a signed storage URL when the store "
        "has them (S3), so video bytes skip the gateway; otherwise they stream.",
    )
    storage_url_ttl_s: int = Field(
        default=3600, ge=60, le=7 * 24 * 3600, description="How long a signed URL is valid."
    )
    executor: Literal["embedded", "none"] = Field(
        default="embedded",
        description="embedded: run shots in this process; none: only accept jobs.",
    )
    catalog: Path | None = None
    routing: Path | None = None
    local_backend_urls: list[str] = Field(
        default_factory=list,
        description="Running local-backend services; empty: run one in-process.",
    )
    local_models: Path | None = Field(
        default=None,
        description="Models config (TOML) for the in-process local backend: the diffusers "
        "models it serves next to the preview model (`reelgate local-backend make-tiny DIR` "
        "writes one for the tiny test models).",
    )
    # Vendors: a vendor with no key is "not configured" and routing skips its models.
    # Kling's key is "ACCESS_KEY:SECRET_KEY". A base URL points an adapter elsewhere
    # (a proxy, a regional endpoint, the emulator).
    google_api_key: SecretStr | None = None
    google_base_url: str | None = None
    runway_api_key: SecretStr | None = None
    runway_base_url: str | None = None
    luma_api_key: SecretStr | None = None
    luma_base_url: str | None = None
    kling_api_key: SecretStr | None = None
    kling_base_url: str | None = None
    fal_api_key: SecretStr | None = None
    fal_base_url: str | None = None
    replicate_api_key: SecretStr | None = None
    replicate_base_url: str | None = None
    minimax_api_key: SecretStr | None = None
    minimax_base_url: str | None = None
    seedance_api_key: SecretStr | None = None
    seedance_base_url: str | None = None
    replicate_webhook_secret: SecretStr | None = Field(
        default=None,
        description="whsec_... : verify Replicate's signed callbacks with it. Unset, with "
        "Replicate configured: the secret is fetched from Replicate's API on first need.",
    )
    fal_jwks_url: str = Field(
        default="https://rest.fal.ai/.well-known/jwks.json",
        description="fal's webhook signing keys (a JWKS): fal's callbacks are verified "
        "against them (fal signs every one); empty: not verified.",
    )
    fal_pricing_url: str = Field(
        default="https://api.fal.ai/v1/models/pricing",
        description="Where fal's unit prices are read (cost = billable units x price); "
        "empty: do not ask, report no cost.",
    )
    kling_unit_price_usd: Decimal | None = Field(
        default=None,
        ge=0,
        description="USD per unit of Kling's final_unit_deduction (what the account's "
        "resource pack costs per unit): Kling shots are then charged at the units they took. "
        "Unset: Kling publishes no USD price per unit, so they are charged at the catalog price.",
    )
    seedance_token_prices_usd: dict[str, Annotated[Decimal, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Seedance model id -> USD per million completion tokens (a JSON object), "
        "over the adapter's UNCONFIRMED defaults; a model with no price is charged at the "
        "catalog price.",
    )
    luma_api: Literal["auto", "agents", "dream-machine"] = Field(
        default="auto",
        description="Which Luma API a model goes to. 'auto': its own (ray-2, ray-flash-2 and "
        "ray-1-6 to the legacy Dream Machine API, others such as ray-3.2 to the Agents API); "
        "'agents' or 'dream-machine': every Luma model to that one.",
    )
    # Tenants, keys and billing (gateway.ledger, gateway.services.tenants).
    admin_key: SecretStr | None = Field(
        default=None, description="Operator key for /v1/admin/... (or use an admin-scoped key)."
    )
    default_tenant_prepaid: bool = Field(
        default=False,
        description="The tenant created on first start needs credits (holds at submit, 402 "
        "when short). Default: unlimited (never refused; its spend is still recorded).",
    )
    key_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a process trusts a key it has checked: a revocation or tenant "
        "change made through another process shows within this time.",
    )
    # C2PA content credentials (gateway.c2pa): with cert and key set, stored MP4s are
    # signed. `reelgate admin c2pa-dev-cert DIR` makes a local test chain.
    c2pa_cert: Path | None = Field(
        default=None, description="PEM chain: the signing certificate first, then its CAs."
    )
    c2pa_key: Path | None = Field(default=None, description="The signing key (PKCS#8 PEM).")
    c2pa_trust_anchors: Path | None = Field(
        default=None,
        description="PEM root certificates credentials are checked against "
        "(`reelgate verify`; the shots' credentials inside a final cut).",
    )
    secret: SecretStr | None = Field(
        default=None, description="Server secret for key hashing; default: a file in data_dir."
    )
    public_base_url: str | None = None
    ffmpeg: str | None = None
    max_concurrent_shots: int = Field(default=4, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0, description="Retry-After on job GETs.")
    attempt_timeout_s: float = Field(default=3600.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    poll_scale: float = Field(
        default=1.0, gt=0, le=10, description="Multiplies backends' polling hints (<1: sooner)."
    )

    @field_validator("local_models", "c2pa_cert", "c2pa_key", "c2pa_trust_anchors", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # `REELGATE_LOCAL_MODELS= cmd` turns it off

    def vendor_keys(self) -> dict[str, tuple[str, str | None]]:
        """Configured vendors: name -> (API key, base URL or None for the default)."""
        out = {}
        for name in VENDORS:
            key: SecretStr | None = getattr(self, f"{name}_api_key")
            if key is not None and key.get_secret_value():
                out[name] = (key.get_secret_value(), getattr(self, f"{name}_base_url"))
        return out

    def webhook_secrets(self) -> dict[str, str]:
        """vendor -> signing secret for the vendors whose callbacks are verified."""
        secret = self.replicate_webhook_secret
        return {"replicate": secret.get_secret_value()} if secret else {}

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'reelgate.db').resolve()}"

    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "objects").resolve().as_uri()
