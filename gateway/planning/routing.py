"""The routing table: for each shot kind, the models to try, in order.

Data, not code (``routing.toml`` next to the catalog, or ``REELGATE_ROUTING``), so an
operator can add a kind or reorder vendors without a release. An operator's file
replaces the shipped one.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gateway.catalog import Catalog, CatalogError

__all__ = ["RoutingTable", "load_routing", "parse_routing"]

_KIND_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class RoutingTable:
    """Ordered candidate model ids per kind."""

    kinds: Mapping[str, tuple[str, ...]]

    def candidates(self, kind: str) -> tuple[str, ...] | None:
        return self.kinds.get(kind)


def parse_routing(
    text: str, source: str = "<routing>", catalog: Catalog | None = None
) -> RoutingTable:
    """Parse routing TOML; with ``catalog``, every id must be in it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{source}: invalid TOML: {e}") from None
    kinds = data.pop("kinds", None)
    problems = [f"unknown top-level key {k!r} (expected [kinds])" for k in data]
    if not isinstance(kinds, dict) or not kinds:
        problems.append("no kinds: expected a [kinds] table of kind = [model ids]")
        kinds = {}
    table: dict[str, tuple[str, ...]] = {}
    for kind, ids in kinds.items():
        if not _KIND_RE.match(kind):
            problems.append(f"kinds.{kind}: a kind is lower-case a-z, 0-9, _ or -, max 32")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            problems.append(f"kinds.{kind}: expected a non-empty list of model ids")
            continue
        unknown = [i for i in ids if catalog is not None and i not in catalog]
        problems += [f"kinds.{kind}: {i!r} is not in the catalog" for i in unknown]
        table[kind] = tuple(dict.fromkeys(ids))
    if problems:
        raise CatalogError(f"{source}: " + "; ".join(problems))
    return RoutingTable(table)


def load_routing(path: Path | None = None, *, catalog: Catalog | None = None) -> RoutingTable:
    """The routing table at ``path``, or the shipped one; checked against ``catalog``."""
    if path is None:
        text = resources.files("gateway").joinpath("routing.toml").read_text("utf-8")
        return parse_routing(text, "gateway/routing.toml", catalog)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as e:
        raise CatalogError(f"cannot read routing table {path}: {e.strerror or e}") from None
    return parse_routing(text, str(path), catalog)
