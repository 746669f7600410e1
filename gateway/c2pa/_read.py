"""Reading a file's C2PA credential back: its validation state and the facts we signed.

States, as c2pa reports them: ``Trusted`` (signature and hashes check out, and the
signer chains to a trust anchor), ``Valid`` (they check out, but the signer is not
under any anchor given), ``Invalid`` (a hash or the signature does not match: the file
changed after signing, or the manifest is damaged). Reading never goes online.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._errors import CredentialReadError
from ._sdk import context, sdk
from ._sign import IDS_LABEL

__all__ = ["Credential", "CredentialIngredient", "State", "read_credential"]

State = Literal["Trusted", "Valid", "Invalid"]
_STATES: tuple[State, ...] = ("Trusted", "Valid", "Invalid")


@dataclass(frozen=True, slots=True)
class CredentialIngredient:
    title: str | None
    relationship: str | None
    has_credential: bool  # the ingredient carried its own manifest (a signed shot)


@dataclass(frozen=True, slots=True)
class Credential:
    """The active manifest of a file, reduced to what a person checks."""

    state: State
    title: str | None = None
    claim_generator: str | None = None  # "reelgate 0.1.0"
    signer: str | None = None  # "common name (issuer)"
    action: str | None = None  # the first action: c2pa.created
    digital_source_type: str | None = None
    software_agents: tuple[str, ...] = ()  # "runway/gen4.5 (runway)", "reelgate 0.1.0"
    job_id: str | None = None
    shot_id: str | None = None
    ingredients: tuple[CredentialIngredient, ...] = ()
    failures: tuple[str, ...] = ()  # "code: explanation", e.g. a hash mismatch
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)  # the raw active one

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"


def read_credential(
    path: Path, *, trust_anchors: Path | Sequence[Path] | None = None
) -> Credential | None:
    """The C2PA credential of ``path``, validated against ``trust_anchors`` (PEM files
    of root certificates); None when the file carries none. Raises
    :class:`CredentialReadError` for a missing file or a format C2PA does not know."""
    c2pa = sdk()
    from ._certs import load_trust_anchors  # c2pa-python depends on cryptography

    path = Path(path)
    if isinstance(trust_anchors, (str, Path)):
        trust_anchors = [Path(trust_anchors)]
    anchors = load_trust_anchors(list(trust_anchors)) if trust_anchors else None
    ctx = context(c2pa, trust_anchors=anchors)
    try:
        with path.open("rb") as f, c2pa.Reader(f, context=ctx) as reader:
            store = json.loads(reader.json())
    except OSError as exc:
        raise CredentialReadError(f"cannot read {path}: {exc.strerror or exc}") from None
    except c2pa.C2paError.ManifestNotFound:
        return None
    except c2pa.C2paError.NotSupported as exc:
        raise CredentialReadError(
            f"{path}: not a format C2PA credentials apply to ({exc})"
        ) from None
    except c2pa.C2paError as exc:  # a manifest is there but cannot be parsed
        return Credential(state="Invalid", failures=(str(exc),))
    return summarize(store)


def summarize(store: dict[str, Any]) -> Credential:
    """A :class:`Credential` from a c2pa manifest store (``Reader.json()``)."""
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    reported = store.get("validation_state")
    failures = [f"{f.get('code')}: {f.get('explanation')}" for f in _failures(store)]
    state = next((s for s in _STATES if s == reported), None)
    if state is None:
        failures.append(f"unknown validation state {reported!r}")
        state = "Invalid"
    assertions = {a.get("label"): a.get("data") or {} for a in manifest.get("assertions", [])}
    actions = assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}
    first = (actions.get("actions") or [{}])[0]
    agents = actions.get("softwareAgents") or [first.get("softwareAgent")]
    ids = assertions.get(IDS_LABEL) or {}
    sig = manifest.get("signature_info") or {}
    generators = manifest.get("claim_generator_info") or []
    return Credential(
        state=state,
        title=manifest.get("title"),
        claim_generator=_agent_text(generators[0]) if generators else None,
        signer=f"{sig.get('common_name')} ({sig.get('issuer')})" if sig else None,
        action=first.get("action"),
        digital_source_type=first.get("digitalSourceType"),
        software_agents=tuple(t for t in map(_agent_text, agents) if t),
        job_id=ids.get("job"),
        shot_id=ids.get("shot"),
        ingredients=tuple(
            CredentialIngredient(i.get("title"), i.get("relationship"), "active_manifest" in i)
            for i in manifest.get("ingredients", [])
        ),
        failures=tuple(failures),
        manifest=manifest,
    )


def _failures(store: dict[str, Any]) -> list[dict[str, Any]]:
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    return list(active.get("failure") or [])


def _agent_text(agent: Any) -> str | None:
    if isinstance(agent, str):
        return agent
    if not isinstance(agent, dict) or not agent.get("name"):
        return None
    text = " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k))
    return f"{text} ({agent['vendor']})" if agent.get("vendor") else text
