"""Storyboard YAML → ``JobCreate``, with errors that name the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.validation import field_issues
from reelgate.types import JobCreate

__all__ = ["StoryboardError", "load_storyboard", "parse_storyboard"]


class StoryboardError(ValueError):
    """A storyboard that cannot be read; the message says where and what."""


def load_storyboard(path: Path) -> JobCreate:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoryboardError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoryboardError(f"{path}: cannot read it ({exc})") from None
    return parse_storyboard(text, str(path))


def parse_storyboard(text: str, source: str = "<storyboard>") -> JobCreate:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise StoryboardError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise StoryboardError(f"{source}: a storyboard is a mapping with a 'shots' list")
    try:
        return JobCreate.model_validate(data)
    except ValidationError as exc:
        lines = []
        for path, msg, loc, _ in field_issues(exc.errors()):  # type: ignore[arg-type]
            line = _line_of(root, loc)
            lines.append(f"{source}:{line}: {path or 'storyboard'}: {msg}")
        raise StoryboardError("\n".join(lines)) from None


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest node on ``loc`` that exists in the YAML."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:  # an unknown key: point at the key itself
                child = next((k for k, _ in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
