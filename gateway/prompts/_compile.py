"""Turn a prompt (string or parts) into the text one model reads.

Models read prompts differently: Runway and Veo guides put the camera first, diffusion
models (Wan, LTX) do best with comma-separated tags, most others with plain sentences.
The catalog names a *dialect* per model; this module renders the parts in that dialect
and fits the result into the model's length limit by dropping whole low-priority parts
(mood first) before it ever cuts text, and then only at a word boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reelgate.types import StructuredPrompt

from ._vocab import CAMERA_MOVE_RE

__all__ = ["DIALECTS", "CompiledPrompt", "compile_prompt"]

#: Parts dropped first when a prompt is over the limit; subject and action never are.
DROP_ORDER = ("mood", "style", "lighting", "environment", "camera", "dialogue")

Parts = dict[str, str]


@dataclass(frozen=True)
class CompiledPrompt:
    """The text sent to the model, and what compiling it had to leave out."""

    text: str
    negative: str | None = None
    camera: str | None = None
    #: Prompt fields (``prompt.mood``, ``style``) dropped to fit the length limit.
    dropped: tuple[str, ...] = ()
    #: True when the text itself was cut (at a word boundary) to fit.
    cut: bool = False
    #: Prompt fields the dialect cannot express (``prompt.dialogue`` in ``tags``).
    omitted: tuple[str, ...] = ()
    #: Length of the text before anything was dropped or cut.
    full_chars: int = 0
    negative_cut: bool = False


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in '.!?"' else text + "."


def _tag(text: str) -> str:
    return text.strip().rstrip(".;,")


def _story(parts: Parts) -> list[str]:
    """Subject and action as one sentence, then the spoken line (``says: "..."``)."""
    subject, action, line = parts.get("subject"), parts.get("action"), parts.get("dialogue")
    lead = " ".join(x.strip().rstrip(".") for x in (subject, action) if x)
    if line is None:
        return [_sentence(lead)]
    quoted = '"' + line.strip().strip('"').strip() + '"'
    if action is None:
        return [_sentence(f"{subject or 'someone'} says: {quoted}")]
    who = subject if subject and len(subject.split()) <= 6 else "the speaker"
    return [_sentence(lead), _sentence(f"{who} says: {quoted}")]


def _plain(parts: Parts) -> str:
    order = ("environment", "lighting", "camera", "style", "mood")
    out = _story(parts) + [_sentence(parts[k]) for k in order if k in parts]
    return " ".join(s for s in out if s)


def _cinematic(parts: Parts) -> str:
    out = [_sentence("Camera: " + parts["camera"].strip())] if "camera" in parts else []
    out += _story(parts)
    out += [_sentence(parts[k]) for k in ("environment", "lighting", "style", "mood") if k in parts]
    return " ".join(s for s in out if s)


def _tags(parts: Parts) -> str:
    order = ("subject", "action", "environment", "lighting", "camera", "style", "mood")
    return ", ".join(t for t in (_tag(parts[k]) for k in order if k in parts) if t)


@dataclass(frozen=True)
class _Dialect:
    render: Callable[[Parts], str]
    sep: str  # how a string prompt and its storyboard style are joined
    dialogue: bool


DIALECTS: dict[str, _Dialect] = {
    "plain": _Dialect(_plain, " ", dialogue=True),
    "cinematic": _Dialect(_cinematic, " ", dialogue=True),
    "tags": _Dialect(_tags, ", ", dialogue=False),
}


def _join_unique(*texts: str | None) -> str | None:
    seen: dict[str, str] = {}
    for text in texts:
        for item in (text or "").split(","):
            if item.strip():
                seen.setdefault(item.strip().lower(), item.strip())
    return ", ".join(seen.values()) or None


def cut_at_word(text: str, max_chars: int) -> str:
    """The longest prefix of ``text`` within ``max_chars`` that ends on a whole word."""
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]
    if not head[-1].isspace():  # the last word in ``head`` is cut: drop it
        head = head.rsplit(None, 1)[0] if len(head.split()) > 1 else text[:max_chars]
    return head[:max_chars].rstrip(" ,;:-")


def _fit(
    render: Callable[[Parts], str], parts: Parts, max_chars: int
) -> tuple[str, list[str], bool]:
    text, dropped = render(parts), []
    for name in DROP_ORDER:
        if len(text) <= max_chars:
            break
        if name in parts:
            parts = {k: v for k, v in parts.items() if k != name}
            dropped.append(name)
            text = render(parts)
    if len(text) <= max_chars:
        return text, dropped, False
    return cut_at_word(text, max_chars), dropped, True


def _camera_words(text: str) -> str | None:
    return _join_unique(*(m.group(0) for m in CAMERA_MOVE_RE.finditer(text)))


def _string_renderer(d: _Dialect) -> Callable[[Parts], str]:
    """A free-text prompt is sent as written, with the storyboard style appended."""

    def render(p: Parts) -> str:
        if "style" not in p:
            return p["prompt"]
        text = p["prompt"].rstrip(" ,")
        if d.sep == " ":  # end the user's sentence, as written, before the style's
            return text + ("" if text[-1] in '.!?"' else ".") + " " + _sentence(p["style"])
        return text + d.sep + _tag(p["style"])

    return render


def compile_prompt(
    prompt: str | StructuredPrompt,
    *,
    style: str | None = None,
    negative: str | None = None,
    dialect: str,
    max_chars: int,
) -> CompiledPrompt:
    """Render ``prompt`` for a model with ``dialect``, within ``max_chars``.

    ``style`` is the storyboard's style (added to the prompt's own); ``negative`` is the
    storyboard's and shot's negative prompt (merged with the prompt's own).
    """
    d = DIALECTS[dialect]
    omitted: tuple[str, ...] = ()
    if isinstance(prompt, str):
        parts = {"prompt": prompt.strip()} | ({"style": style.strip()} if style else {})
        render, names = _string_renderer(d), {"style": "style"}
        camera, neg = _camera_words(prompt), _join_unique(negative)
    else:
        fields = prompt.model_dump(exclude_none=True, exclude={"negative"})
        fields["style"] = _join_unique(fields.get("style"), style) or ""
        parts = {k: v for k, v in fields.items() if v.strip()}
        if not d.dialogue and "dialogue" in parts:
            omitted = ("prompt.dialogue",)
            del parts["dialogue"]
        render, names = d.render, {k: f"prompt.{k}" for k in DROP_ORDER}
        camera, neg = prompt.camera, _join_unique(prompt.negative, negative)
    text, dropped, cut = _fit(render, parts, max_chars)
    neg_text = cut_at_word(neg, max_chars) if neg else None
    return CompiledPrompt(
        text=text,
        negative=neg_text,
        camera=camera,
        dropped=tuple(names[n] for n in dropped),
        cut=cut,
        omitted=omitted,
        full_chars=len(render(parts)),
        negative_cut=bool(neg and neg_text != neg),
    )
