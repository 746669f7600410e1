"""``reelgate verify FILE.mp4``: does this file match its provenance, and its credential?

Two independent checks, each ``ok``, ``failed`` or ``skipped``:

- **hash**: the file's sha256 against a provenance manifest (``--manifest``, or the
  sidecar the store writes next to it: ``NAME.provenance.json``, or ``provenance.json``
  beside a ``video.mp4``). A job's provenance document (``GET /v1/jobs/{id}/provenance``)
  works too: the file must be one of its outputs.
- **c2pa**: the C2PA credential inside the file. ``Invalid`` fails; ``Valid`` fails
  when trust anchors were given (the signer is not under them) and passes otherwise,
  with a note; ``Trusted`` passes. No credential is ``skipped``.

The file is verified when no check failed and at least one passed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["Check", "VerifyError", "exit_code", "find_manifest", "verify"]

Status = Literal["ok", "failed", "skipped"]
_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/"


class VerifyError(Exception):
    """A usage problem (a missing file, a manifest that is not JSON): exit code 2."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str  # "hash" | "c2pa"
    status: Status
    summary: str
    details: tuple[str, ...] = ()


def verify(video: Path, manifest: Path | None, trust: Sequence[Path]) -> list[Check]:
    if not video.is_file():
        raise VerifyError(f"{video}: no such file")
    return [check_hash(video, manifest or find_manifest(video)), check_credential(video, trust)]


def exit_code(checks: Sequence[Check]) -> int:
    if any(c.status == "failed" for c in checks):
        return 1
    return 0 if any(c.status == "ok" for c in checks) else 1


def find_manifest(video: Path) -> Path | None:
    candidates = [video.with_name(f"{video.stem}.provenance.json")]
    if video.name == "video.mp4":  # the store's shot layout: .../{attempt}/video.mp4
        candidates.append(video.with_name("provenance.json"))
    return next((p for p in candidates if p.is_file()), None)


# --- hash --------------------------------------------------------------------------------


def check_hash(video: Path, manifest: Path | None) -> Check:
    if manifest is None:
        return Check("hash", "skipped", "no provenance manifest found (pass --manifest PATH)")
    outputs = _outputs(_load_json(manifest), manifest)
    with video.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        size = f.tell()
    for m in outputs:
        if m["output"].get("sha256") == digest:
            return Check("hash", "ok", f"matches {manifest.name}: {_describe(m)}")
    if len(outputs) == 1:
        expected = outputs[0]["output"]
        details = (
            f"file:     sha256 {digest}, {size} bytes",
            f"manifest: sha256 {expected.get('sha256')}, {expected.get('bytes')} bytes "
            f"({_describe(outputs[0])})",
        )
        return Check("hash", "failed", f"does not match {manifest.name}", details)
    return Check(
        "hash",
        "failed",
        f"matches none of the {len(outputs)} outputs in {manifest.name}",
        (f"file: sha256 {digest}, {size} bytes",),
    )


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise VerifyError(f"--manifest {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise VerifyError(f"--manifest {path}: not a JSON provenance manifest ({exc})") from None


def _outputs(doc: Any, path: Path) -> list[dict[str, Any]]:
    """The manifests in ``doc`` that describe an output: ``doc`` itself, or the shots and
    final cut of a job's provenance document."""
    if isinstance(doc, dict) and ("shots" in doc or "final" in doc) and "output" not in doc:
        manifests = [*(doc.get("shots") or []), doc.get("final")]
    else:
        manifests = [doc]
    found = [
        m for m in manifests
        if isinstance(m, dict) and isinstance(m.get("output"), dict) and m["output"].get("sha256")
    ]  # fmt: skip
    if not found:
        raise VerifyError(f"--manifest {path}: no output sha256 in it (not a provenance manifest)")
    return found


def _describe(manifest: dict[str, Any]) -> str:
    ids = manifest.get("ids") or {}
    if manifest.get("kind") == "final":
        return f"final cut of job {ids.get('job')}"
    model = (manifest.get("model") or {}).get("id")
    return f"shot {ids.get('shot')} of job {ids.get('job')}" + (f", {model}" if model else "")


# --- C2PA --------------------------------------------------------------------------------


def check_credential(video: Path, trust: Sequence[Path]) -> Check:
    from gateway.c2pa import CredentialConfigError, CredentialReadError, read_credential

    if importlib.util.find_spec("c2pa") is None:
        return Check("c2pa", "skipped", "not checked: pip install 'reelgate[c2pa]' to check it")
    try:
        cred = read_credential(video, trust_anchors=list(trust) or None)
    except CredentialConfigError as exc:  # an unreadable --trust file
        raise VerifyError(str(exc)) from None
    except CredentialReadError as exc:
        return Check("c2pa", "skipped", str(exc))
    if cred is None:
        return Check("c2pa", "skipped", "no C2PA credential in the file")
    details = _credential_details(cred)
    if cred.state == "Invalid":
        return Check("c2pa", "failed", "Invalid: the file or its manifest changed after signing",
                     details + tuple(cred.failures))  # fmt: skip
    if cred.state == "Valid" and trust:
        return Check(
            "c2pa", "failed",
            "Valid, but not Trusted: the signer is not under the given trust anchors",
            details,
        )  # fmt: skip
    if cred.state == "Valid":
        note = "(signature intact; pass --trust ROOT.pem to check who signed it)"
        return Check("c2pa", "ok", f"Valid {note}", details)
    return Check("c2pa", "ok", "Trusted", details)


def _credential_details(cred: Any) -> tuple[str, ...]:
    lines = [f"signed by {cred.signer}"] if cred.signer else []
    if cred.action:
        source = (cred.digital_source_type or "").removeprefix(_SOURCE_TYPE)
        lines.append(f"{cred.action}" + (f" ({source})" if source else ""))
    if cred.software_agents:
        lines.append("software agents: " + ", ".join(cred.software_agents))
    ids = [f"{k} {v}" for k, v in (("job", cred.job_id), ("shot", cred.shot_id)) if v]
    if ids:
        lines.append(", ".join(ids))
    if cred.ingredients:
        lines.append("ingredients: " + ", ".join(i.title or "?" for i in cred.ingredients))
    return tuple(lines)
