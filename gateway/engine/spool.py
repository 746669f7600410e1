"""The local spool: outputs fetched from a backend wait here until the store has them.

Every output passes through ``data_dir/spool``: the download is written (and hashed)
there, probed and signed, then stored. If the store is unreachable, a :class:`Pending`
record is saved beside it: from then on the output no longer depends on the backend
(whose URLs expire), it waits here and only the upload is retried, and a restart finds
it again (:meth:`Spool.load`). The record goes last, written atomically, so a file
without one is an unfinished download (or one the store was taking when the process
died: its backend is asked again) and is dropped on start.

Layout, per output name (an attempt id, or ``{job}-final``)::

    {name}.mp4          the download as it arrives
    {name}.signed.mp4   the same, with its C2PA credential (when signing is configured)
    {name}.json         the Pending record: ready to store
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway import provenance
from gateway.storage import StorageConfigError, StorageServiceError

__all__ = ["Pending", "Spool", "store_unreachable"]

log = logging.getLogger(__name__)

_RECORD = ".json"


@dataclass(frozen=True)
class Pending:
    """An output ready to store: its file, its keys, and what the engine records."""

    name: str
    video: Path
    key: str
    sha256: str
    size: int
    metadata: dict[str, str]
    manifest_key: str
    manifest: dict[str, Any]
    #: The wire Output's fields plus ``provenance_key`` (and ``assemble_mode``).
    info: dict[str, Any] = field(default_factory=dict)
    #: The cost the backend itself reported; None when it reported none (the manifest
    #: then records the catalog estimate, already marked up: never to be billed as the
    #: vendor's figure, which the markup would be applied to again).
    vendor_cost_micros: int | None = None

    @property
    def manifest_bytes(self) -> bytes:
        return provenance.canonical_json(self.manifest)


class Spool:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, name: str, suffix: str = ".mp4") -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir / f"{name}{suffix}"

    def save(self, pending: Pending) -> None:
        """Mark ``pending`` ready to store; it survives a restart from now on."""
        record = {**asdict(pending), "video": pending.video.name}
        tmp = self.dir / f".{pending.name}{_RECORD}.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / f"{pending.name}{_RECORD}")

    def load(self, name: str) -> Pending | None:
        """The saved output called ``name``, or None (never saved, or its file is gone)."""
        try:
            record = json.loads((self.dir / f"{name}{_RECORD}").read_bytes())
            pending = Pending(**{**record, "video": self.dir / record["video"]})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("dropping unreadable spool record %s: %s", name, exc)
            self.discard(name)
            return None
        if pending.video.exists() and pending.video.stat().st_size != pending.size:
            log.warning("dropping spooled output %s: its file is not the recorded size", name)
            self.discard(name)
            return None
        return pending  # its file may be gone: moved into a local store by an earlier try

    def discard(self, name: str) -> None:
        """Remove the output ``name`` and its record (record first: never a dangling one)."""
        for suffix in (_RECORD, ".mp4", ".signed.mp4"):
            (self.dir / f"{name}{suffix}").unlink(missing_ok=True)

    def names(self) -> list[str]:
        """The outputs waiting for the store."""
        if not self.dir.is_dir():
            return []
        return sorted(p.name.removesuffix(_RECORD) for p in self.dir.glob(f"*{_RECORD}"))

    def recover(self, keep: Collection[str] = ()) -> list[str]:
        """On start: keep the saved outputs named in ``keep`` (attempts still running),
        drop everything else (unfinished downloads, outputs of finished attempts, final
        cuts, which are assembled again). Returns the names kept."""
        if not self.dir.is_dir():
            return []
        kept = [n for n in self.names() if n in keep and self.load(n) is not None]
        files = {f"{n}{s}" for n in kept for s in (_RECORD, ".mp4", ".signed.mp4")}
        for path in self.dir.iterdir():
            if path.name not in files:
                path.unlink(missing_ok=True)
        if kept:
            log.info("%d spooled outputs wait for the store: %s", len(kept), ", ".join(kept))
        return kept


def store_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the store is down (worth waiting for), not a bad object.

    The service failing or refusing (network, 5xx, throttling, a missing bucket or
    refused credentials an operator will fix) and I/O errors of a local store wait;
    checksum mismatches, bad keys or metadata and a vanished spool file do not.
    """
    if isinstance(exc, StorageServiceError | StorageConfigError):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)
