"""Model families: one folder each (preview now; Wan and LTX through diffusers next)."""

from __future__ import annotations

from local_backend.families.base import Model

__all__ = ["load_all_models"]


def load_all_models() -> list[Model]:
    from local_backend.families import preview

    return list(preview.load_models())
