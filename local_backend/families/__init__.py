"""Model families: ``preview`` (always served) and the diffusers families in the config.

A diffusers family (``wan``, ``ltx``) is imported only when a configured model
needs it, so a backend serving only ``preview`` never imports torch.
"""

from __future__ import annotations

import importlib

from local_backend.config import BackendConfig
from local_backend.families.base import Model
from local_backend.warm import WarmPool

__all__ = ["load_all_models"]


def load_all_models(
    config: BackendConfig | None = None, pool: WarmPool | None = None
) -> list[Model]:
    """The models ``config`` names, built but not loaded (pipelines load on first use)."""
    from local_backend.families import preview

    models: list[Model] = list(preview.load_models())
    config = config or BackendConfig()
    if not config.models:
        return models
    try:
        from local_backend.families.diffusers_common import DiffusersModel
    except ImportError as exc:
        raise RuntimeError(
            f"models {', '.join(m.id for m in config.models)} need torch and diffusers: "
            "pip install 'reelgate[gpu]'"
        ) from exc
    pool = pool or WarmPool()
    for entry in config.models:
        family = importlib.import_module(f"local_backend.families.{entry.family}").FAMILY
        models.append(DiffusersModel(entry, family, pool, config.allow_downloads))
    return models
