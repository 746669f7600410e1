"""C2PA content credentials for stored MP4s: sign them, read them back, make a dev CA.

With ``REELGATE_C2PA_CERT`` and ``REELGATE_C2PA_KEY`` set, every stored MP4 (each shot
and the final cut) carries a signed C2PA manifest: action ``c2pa.created``, digital
source type ``trainedAlgorithmicMedia``, the model and the gateway as software agents,
the job and shot ids; a final cut lists its shots as ingredients. The JSON provenance
manifest (:mod:`gateway.provenance`) stays the full record; the credential is what
travels inside the file.

Use::

    signer = C2paSigner.from_settings(settings)       # at startup; None if not configured
    signed = signer.sign_shot(src, dst, job_id=..., shot_id=..., model="runway/gen4.5",
                              vendor="runway")        # -> SignedFile(path, sha256, bytes)
    signed = signer.sign_final(src, dst, job_id=..., ingredients=[Ingredient(path, shot_id,
                               sha256, model), ...])
    cred = read_credential(path, trust_anchors=root_pem)  # Credential | None
    cred.state                                        # "Trusted" | "Valid" | "Invalid"
    make_dev_cert(directory)                          # DevCert(root, cert, key) for tests

The signed file's bytes differ from the source's: hash and store the signed file.
:class:`C2paSigner` has the wiring recipe for ``gateway/engine/outputs.py``. Needs the
``c2pa`` extra (c2pa-python, cryptography); without it :class:`C2paSigner` and
:func:`read_credential` raise :class:`CredentialConfigError` naming the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import CredentialConfigError, CredentialError, CredentialReadError, SigningError
from ._read import Credential, CredentialIngredient, State, read_credential
from ._sign import C2paSigner, Ingredient, SignedFile

if TYPE_CHECKING:
    from ._certs import DevCert, make_dev_cert

__all__ = [
    "C2paSigner",
    "Credential",
    "CredentialConfigError",
    "CredentialError",
    "CredentialIngredient",
    "CredentialReadError",
    "DevCert",
    "Ingredient",
    "SignedFile",
    "SigningError",
    "State",
    "make_dev_cert",
    "read_credential",
]


def __getattr__(name: str) -> Any:
    """``make_dev_cert`` and ``DevCert`` on first use: they need ``cryptography`` (the
    c2pa extra), and importing this package must work without it (the engine imports
    it whether or not signing is configured)."""
    if name not in ("DevCert", "make_dev_cert"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from . import _certs
    except ImportError as exc:
        raise CredentialConfigError(
            f"C2PA certificates need the c2pa extra: pip install 'reelgate[c2pa]' ({exc})"
        ) from None
    return getattr(_certs, name)
