"""The errors this package raises; foreign ``c2pa.C2paError`` never leaves it::

    CredentialError                  (never raised itself)
    ├── CredentialConfigError        the cert, key or trust anchors are missing or unusable,
    │                                or the ``c2pa`` extra is not installed (also a
    │                                ``gateway.settings.ConfigError``: the CLI prints it)
    ├── SigningError                 a file could not be signed (not an MP4, I/O)
    └── CredentialReadError          a file whose credential cannot be looked for at all
                                     (missing, not a format C2PA knows)

A credential that is present but broken is not an error: ``read_credential`` returns
it with ``state="Invalid"``.
"""

from __future__ import annotations

from gateway.settings import ConfigError

__all__ = ["CredentialConfigError", "CredentialError", "CredentialReadError", "SigningError"]


class CredentialError(Exception):
    """Base of the C2PA error tree; see the module docstring."""


class CredentialConfigError(CredentialError, ConfigError):
    pass


class SigningError(CredentialError):
    pass


class CredentialReadError(CredentialError):
    pass
