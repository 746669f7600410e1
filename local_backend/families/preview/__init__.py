"""The ``preview`` family: CPU animatics (title cards and camera moves) for drafts."""

from __future__ import annotations

from local_backend.families.preview.model import PreviewModel, PreviewTask

__all__ = ["PreviewModel", "PreviewTask", "load_models"]


def load_models() -> list[PreviewModel]:
    return [PreviewModel()]
