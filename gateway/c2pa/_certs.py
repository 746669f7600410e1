"""Certificates: a development CA chain, and checks on a signing cert and key.

C2PA signs with an X.509 v3 end-entity certificate whose extended key usage names a
purpose C2PA accepts (emailProtection, documentSigning, ...); ``serverAuth`` alone is
refused when the first file is signed, with "the certificate is invalid". Those checks,
and that the key is the certificate's, are made here when the signer is built, so a
bad configuration fails at startup with a sentence that names the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._errors import CredentialConfigError

__all__ = [
    "DevCert",
    "SigningCredentials",
    "load_signing_credentials",
    "load_trust_anchors",
    "make_dev_cert",
]

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
#: The extended key usages c2pa-rs accepts for a claim signer (its default trust config).
SIGNING_EKUS = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    DOCUMENT_SIGNING: "documentSigning",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    x509.ObjectIdentifier("1.3.6.1.4.1.311.76.59.1.9"): "Microsoft document signing",
    x509.ObjectIdentifier("1.3.6.1.4.1.62558.2.1"): "C2PA claim signing",
}
_EKU_NAMES = {
    **SIGNING_EKUS,
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
_CURVES = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


@dataclass(frozen=True, slots=True)
class DevCert:
    """What :func:`make_dev_cert` wrote: the trust anchor, the chain to sign with, its key."""

    root: Path  # the root CA: a verifier's trust anchor (``reelgate verify --trust``)
    cert: Path  # signer + intermediate, PEM: ``REELGATE_C2PA_CERT``
    key: Path  # the signer's private key, PKCS#8 PEM: ``REELGATE_C2PA_KEY``


@dataclass(frozen=True, slots=True)
class SigningCredentials:
    chain_pem: bytes
    key_pem: bytes
    alg: str  # c2pa's name: es256, es384, es512, ps256, ed25519
    subject: str  # the signer's common name (or full subject)


# --- the development chain ---------------------------------------------------------------


def make_dev_cert(directory: Path, *, days: int = 365, name: str = "reelgate dev") -> DevCert:
    """Write a local test chain to ``directory``: ``root.pem`` (a CA, the trust anchor),
    ``signer.pem`` (an ES256 signing certificate with the documentSigning and
    emailProtection key usages, followed by its intermediate CA) and ``signer.key``
    (mode 0600). For development and tests only: anyone with the folder can sign as it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate a little clock skew
    root_key, ca_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _ca(_name(f"{name} root CA", name), root_key, None, now, days * 10, path_len=1)
    ca = _ca(_name(f"{name} intermediate CA", name), ca_key, (root, root_key), now, days * 5, 0)
    leaf = (
        _builder(_name(f"{name} signer", name), leaf_key.public_key(), ca, now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    out = DevCert(directory / "root.pem", directory / "signer.pem", directory / "signer.key")
    out.root.write_bytes(_pem(root))
    out.cert.write_bytes(_pem(leaf) + _pem(ca))
    out.key.touch(mode=0o600)
    out.key.chmod(0o600)
    out.key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )


def _builder(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate | None,
    start: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        builder = builder.add_extension(aki, critical=False)
    return builder


def _ca(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    start: dt.datetime,
    days: int,
    path_len: int,
) -> x509.Certificate:
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    return (
        _builder(subject, key.public_key(), issuer_cert, start, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
        .add_extension(_key_usage(sign=False), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _key_usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not sign,
        crl_sign=not sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --- checks ------------------------------------------------------------------------------


def load_signing_credentials(
    cert_path: Path, key_path: Path, *, now: dt.datetime | None = None
) -> SigningCredentials:
    """Read and check a signing chain and its key; raise :class:`CredentialConfigError`
    with the file and the problem (missing, not PEM, wrong key, wrong key usage, expired)."""
    what_cert = f"C2PA certificate (REELGATE_C2PA_CERT) {cert_path}"
    what_key = f"C2PA key (REELGATE_C2PA_KEY) {key_path}"
    chain_pem, key_pem = _read(cert_path, what_cert), _read(key_path, what_key)
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise CredentialConfigError(f"{what_cert}: not a PEM certificate chain") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise CredentialConfigError(
            f"{what_key}: the key is encrypted; give an unencrypted PKCS#8 PEM key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CredentialConfigError(f"{what_key}: not a PEM private key") from None
    leaf = chain[0]
    _check_leaf(leaf, what_cert, now or dt.datetime.now(dt.UTC))
    if _public_bytes(leaf.public_key()) != _public_bytes(key.public_key()):
        raise CredentialConfigError(
            f"{what_key} is not the key of the first certificate in {cert_path} "
            f"({_subject(leaf)}); the signing certificate must come first in the chain"
        )
    return SigningCredentials(chain_pem, key_pem, _alg(key, what_key), _subject(leaf))


def load_trust_anchors(paths: Sequence[Path]) -> str:
    """The PEM text of the given root certificates (each file may hold several)."""
    parts: list[str] = []
    for path in paths:
        what = f"C2PA trust anchors {path}"
        data = _read(path, what)
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise CredentialConfigError(f"{what}: not a PEM certificate file") from None
        parts.extend(_pem(c).decode() for c in certs)
    return "".join(parts)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialConfigError(f"{what}: no such file") from None
    except OSError as exc:
        raise CredentialConfigError(f"{what}: cannot be read ({exc.strerror})") from None


def _check_leaf(leaf: x509.Certificate, what: str, now: dt.datetime) -> None:
    if leaf.version is not x509.Version.v3:
        raise CredentialConfigError(f"{what}: C2PA needs an X.509 v3 certificate")
    try:
        basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is not None and basic.ca:
        raise CredentialConfigError(
            f"{what}: the first certificate ({_subject(leaf)}) is a CA; "
            "sign with an end-entity certificate issued by it"
        )
    try:
        ekus = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = set()
    if not ekus & SIGNING_EKUS.keys():
        allowed = ", ".join(SIGNING_EKUS.values())
        has = ", ".join(sorted(_EKU_NAMES.get(o, o.dotted_string) for o in ekus)) or "none"
        raise CredentialConfigError(
            f"{what}: its extended key usage ({has}) is not one C2PA accepts for signing; "
            f"it needs one of: {allowed}"
        )
    if now < leaf.not_valid_before_utc or now > leaf.not_valid_after_utc:
        raise CredentialConfigError(
            f"{what}: valid from {leaf.not_valid_before_utc:%Y-%m-%d} to "
            f"{leaf.not_valid_after_utc:%Y-%m-%d}, not now"
        )


def _alg(key: object, what: str) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return _CURVES[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"  # C2PA allows RSA only with PSS padding
    raise CredentialConfigError(
        f"{what}: unsupported key type; C2PA signs with EC P-256/P-384/P-521, Ed25519 or RSA"
    )


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _subject(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()
