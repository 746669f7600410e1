"""The LTX-Video family through diffusers: ``LTXPipeline``, ``LTXImageToVideoPipeline``.

LTX's VAE strides time by 8 (frame counts 8k+1) and its pipeline refuses sizes
that are not multiples of 32. It conditions on the frame rate, so the request's
fps is passed through. Defaults follow diffusers' (50 steps, CFG 3).
"""

from __future__ import annotations

from typing import Any

from local_backend.families.diffusers_common import DiffusersTask, Family

__all__ = ["FAMILY"]


def _call_kwargs(task: DiffusersTask) -> dict[str, Any]:
    return {"frame_rate": task.fps}


FAMILY = Family(
    name="ltx",
    pipelines={"t2v": "LTXPipeline", "i2v": "LTXImageToVideoPipeline"},
    frame_step=8,
    size_multiple=32,
    steps=50,
    guidance_scale=3.0,
    call_kwargs=_call_kwargs,
)
