"""Advice on prompts: what practitioners know goes wrong with video models.

Each rule is a small heuristic with a stable ``code`` clients can filter on. Lint never
changes the prompt; the compiler's own trimming is reported here too (``truncated``)
so a user sees every difference between what they wrote and what was sent.
"""

from __future__ import annotations

import re

from reelgate.types import LintWarning, StructuredPrompt

from ._compile import CompiledPrompt
from ._vocab import ABSTRACT_RE, CAMERA_CONFLICTS, CAMERA_MOVE_RE, MOTION_WORDS

__all__ = ["LINT_CODES", "OVERLONG_WORDS", "lint_prompt"]

LINT_CODES = (
    "missing_motion",
    "several_subjects",
    "contradictory_camera",
    "abstract_wording",
    "overlong",
    "truncated",
    "dialogue_unsupported",
)

#: Past this many words models start ignoring parts of a prompt (vendor guides ask for
#: one subject, one action, one camera move).
OVERLONG_WORDS = 150

_DET = r"(?:a|an|the|his|her|their|its|one|another|[a-z]+'s)"
_SEVERAL_RE = re.compile(
    rf"\b{_DET}\b[^.;]*?(?:,|\band\b|&)\s*{_DET}\b"
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|several|multiple|[2-9]|\d\d+)\s+[a-z]",
    re.IGNORECASE,
)


def _parts(prompt: str | StructuredPrompt) -> dict[str, str]:
    if isinstance(prompt, str):
        return {"prompt": prompt}
    dumped = prompt.model_dump(exclude_none=True, exclude={"negative"})
    return {f"prompt.{k}": v for k, v in dumped.items()}


def _motion(prompt: str | StructuredPrompt) -> list[LintWarning]:
    moving: object
    if isinstance(prompt, str):
        moving = MOTION_WORDS.search(prompt) or CAMERA_MOVE_RE.search(prompt)
        field = "prompt"
    else:
        moving = prompt.action or prompt.dialogue or CAMERA_MOVE_RE.search(prompt.camera or "")
        field = "prompt.action"
    if moving:
        return []
    msg = "no motion: say what moves (an action verb or a camera move), or it plays as a still"
    return [LintWarning(code="missing_motion", message=msg, field=field)]


_PREPOSITION_RE = re.compile(
    r"\b(?:in|on|at|across|through|over|under|into|onto|from|near|by|along|beside|behind"
    r"|with|against|toward|towards|inside|outside|past)\b",
    re.IGNORECASE,
)


def _lead_phrase(text: str) -> str:
    """The part of a free-text prompt that names its subject: up to a verb or preposition."""
    first = re.split(r"[.!?]", text, maxsplit=1)[0]
    ends = [m.start() for m in (MOTION_WORDS.search(first), _PREPOSITION_RE.search(first)) if m]
    return first[: min(ends)] if ends else first


def _subjects(prompt: str | StructuredPrompt) -> list[LintWarning]:
    if isinstance(prompt, str):
        text, field = _lead_phrase(prompt), "prompt"
    else:
        text, field = prompt.subject or "", "prompt.subject"
    found = _SEVERAL_RE.search(text)
    if not found:
        return []
    msg = (
        f'several subjects ("{found.group(0).strip()}"): models blend or drop extra ones; '
        "keep one subject per shot or describe the group as one"
    )
    return [LintWarning(code="several_subjects", message=msg, field=field)]


def _camera(prompt: str | StructuredPrompt, parts: dict[str, str]) -> list[LintWarning]:
    text = " ".join(parts.values())
    camera = "" if isinstance(prompt, str) else (prompt.camera or "")
    out = []
    for left, right in CAMERA_CONFLICTS:
        a = left.search(text)
        b = right.search(text) if a else None  # most prompts match neither side
        if not (a and b):
            continue
        in_camera = left.search(camera) or right.search(camera)
        field = "prompt.camera" if in_camera else "prompt"
        msg = f'camera terms contradict: "{a.group(0)}" and "{b.group(0)}"; pick one'
        out.append(LintWarning(code="contradictory_camera", message=msg, field=field))
    return out


def _abstract(parts: dict[str, str]) -> list[LintWarning]:
    out = []
    for field, text in parts.items():
        if field == "prompt.dialogue":
            continue  # spoken words may say anything
        words = list(dict.fromkeys(m.group(0).lower() for m in ABSTRACT_RE.finditer(text)))
        if words:
            quoted = ", ".join(f'"{w}"' for w in words)
            msg = (
                f"abstract wording ({quoted}): describe what is seen instead (light, color, motion)"
            )
            out.append(LintWarning(code="abstract_wording", message=msg, field=field))
    return out


def _length(compiled: CompiledPrompt, max_chars: int) -> list[LintWarning]:
    out = []
    words = len(compiled.text.split())
    if words > OVERLONG_WORDS:
        msg = f"prompt is {words} words; models follow prompts under {OVERLONG_WORDS} words better"
        out.append(LintWarning(code="overlong", message=msg, field="prompt"))
    if compiled.dropped or compiled.cut:
        what = [f"dropped {', '.join(compiled.dropped)}"] if compiled.dropped else []
        what += [f"cut at a word boundary to {len(compiled.text)} chars"] if compiled.cut else []
        msg = f"prompt is {compiled.full_chars} chars, over this model's {max_chars}: " + "; ".join(
            what
        )
        field = compiled.dropped[0] if compiled.dropped and not compiled.cut else "prompt"
        out.append(LintWarning(code="truncated", message=msg, field=field))
    if compiled.negative_cut:
        msg = f"negative prompt cut at a word boundary to fit this model's {max_chars} chars"
        out.append(LintWarning(code="truncated", message=msg, field="negative"))
    return out


def lint_prompt(
    prompt: str | StructuredPrompt, compiled: CompiledPrompt, max_chars: int
) -> list[LintWarning]:
    """Warnings about ``prompt`` as written and as ``compiled`` for one model."""
    parts = _parts(prompt)
    out = _motion(prompt) + _subjects(prompt) + _camera(prompt, parts) + _abstract(parts)
    out += _length(compiled, max_chars)
    for field in compiled.omitted:
        msg = "this model's prompt style has no dialogue; the line was left out"
        out.append(LintWarning(code="dialogue_unsupported", message=msg, field=field))
    return out
