"""Pydantic validation errors → ``(field path, message)`` a person can act on.

Pydantic's locations carry union-branch labels (``constrained-str``,
``StructuredPrompt``) and report every branch that failed; a user wants the path
they wrote (``shots[2].prompt.zoom``) and only the branch their value was aimed at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FieldIssue", "field_issues", "field_path"]

FieldIssue = tuple[str, str, list[Any], Any]  # path, message, clean loc, allowed


def _is_branch_label(part: Any) -> bool:
    return isinstance(part, str) and (
        part[:1].isupper() or "-" in part or "[" in part or part in ("str", "int", "float")
    )


def _clean(loc: Sequence[Any]) -> list[Any]:
    return [p for p in loc if not _is_branch_label(p)]


def field_path(loc: Sequence[Any]) -> str:
    out = ""
    for p in _clean(loc):
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _union_prefix(loc: Sequence[Any]) -> tuple[Any, ...] | None:
    for n, part in enumerate(loc):
        if _is_branch_label(part):
            return tuple(loc[:n])
    return None


def _drop_wrong_branches(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """In a union, a branch that rejected the value's *type* is noise when another
    branch accepted the type and found a real problem inside it."""

    def type_only(err: dict[str, Any]) -> bool:
        return bool(err["loc"]) and _is_branch_label(err["loc"][-1])

    deep = {_union_prefix(e["loc"]) for e in errors if not type_only(e)} - {None}
    return [e for e in errors if not (type_only(e) and _union_prefix(e["loc"]) in deep)]


def field_issues(errors: Iterable[dict[str, Any]], *, strip: int = 0) -> list[FieldIssue]:
    """Drop ``strip`` leading loc parts (e.g. FastAPI's ``body``); dedupe; keep order."""
    errors = list(errors)
    useful = _drop_wrong_branches(errors)
    seen: set[tuple[str, str]] = set()
    out: list[FieldIssue] = []
    for err in useful:
        loc = _clean(list(err["loc"])[strip:])
        path, msg = field_path(loc), err["msg"]
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        ctx = err.get("ctx") or {}
        out.append((path, msg, loc, ctx.get("expected") or ctx.get("pattern")))
    return out
