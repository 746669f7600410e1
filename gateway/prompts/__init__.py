"""Prompt compiling (per model dialect, within its length limit) and linting.

Pure functions over :mod:`reelgate.types`; no I/O. The catalog names each model's
dialect; the planner calls :func:`compile_prompt` then :func:`lint_prompt`.
"""

from ._compile import DIALECTS, CompiledPrompt, compile_prompt, cut_at_word
from ._lint import LINT_CODES, OVERLONG_WORDS, lint_prompt
from ._vocab import CAMERA_MOVE_RE

__all__ = [
    "CAMERA_MOVE_RE",
    "DIALECTS",
    "LINT_CODES",
    "OVERLONG_WORDS",
    "CompiledPrompt",
    "compile_prompt",
    "cut_at_word",
    "lint_prompt",
]
