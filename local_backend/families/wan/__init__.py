"""The Wan family (Wan 2.1/2.2 through diffusers): ``WanPipeline``, ``WanImageToVideoPipeline``.

Wan's VAE strides time by 4 (frame counts 4k+1) and its pipeline refuses sizes
that are not multiples of 16. Defaults follow diffusers' (50 steps, CFG 5).
"""

from __future__ import annotations

from local_backend.families.diffusers_common import Family

__all__ = ["FAMILY"]

FAMILY = Family(
    name="wan",
    pipelines={"t2v": "WanPipeline", "i2v": "WanImageToVideoPipeline"},
    frame_step=4,
    size_multiple=16,
    steps=50,
    guidance_scale=5.0,
)
