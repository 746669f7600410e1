"""The one place that imports ``c2pa`` (c2pa-python): lazily, with an error that names
the extra to install, and with the settings every reader and signer here shares."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from ._errors import CredentialConfigError

__all__ = ["MP4", "TRAINED_ALGORITHMIC_MEDIA", "context", "sdk"]

MP4 = "video/mp4"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def sdk() -> ModuleType:
    try:
        import c2pa
    except ImportError as exc:  # the wheel ships a native library; some platforms lack one
        raise CredentialConfigError(
            f"C2PA content credentials need the c2pa extra: pip install 'reelgate[c2pa]' ({exc})"
        ) from None
    return c2pa  # type: ignore[no-any-return]  # c2pa-python ships no type hints


def context(c2pa: ModuleType, *, trust_anchors: str | None, **sections: dict[str, Any]) -> Any:
    """A ``c2pa.Context`` that never goes online (no remote manifests, no OCSP) and trusts
    ``trust_anchors`` (PEM) in addition to the SDK's own list."""
    verify = {"remote_manifest_fetch": False, "ocsp_fetch": False, **sections.pop("verify", {})}
    config: dict[str, Any] = {"verify": verify, **sections}
    if trust_anchors:
        config["trust"] = {"user_anchors": trust_anchors}
    return c2pa.Context.from_json(json.dumps(config))
