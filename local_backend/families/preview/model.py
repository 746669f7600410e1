"""The ``preview`` model: a CPU animatic that stands in for a video model in drafts.

Each frame is a window of one card, resized with Pillow; a 4 s 640x360 shot takes
well under a second, so storyboards can be timed and reviewed before any GPU or
vendor spends money on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from local_backend.families.base import (
    Capabilities,
    GenerationParams,
    ModelInfo,
    OnStep,
    Range,
    check_capabilities,
)
from local_backend.families.encode import Mp4Writer, prepare_spare
from local_backend.families.images import decode_data_uri
from local_backend.families.preview.camera import MARGIN, Move, parse_move, window
from local_backend.families.preview.card import Card, draw_card, fit

__all__ = ["PreviewModel", "PreviewTask"]

#: With a last frame, the final third of the shot cross-fades into it.
CROSSFADE = 1 / 3

INFO = ModelInfo(
    id="preview",
    family="preview",
    description="CPU animatic: a title card per shot with a slow camera move, for drafts.",
    capabilities=Capabilities(
        modes=["t2v", "i2v", "first_last"],
        duration_s=Range(min=0.5, max=60),
        fps=Range(min=8, max=60),
        max_long_side=1920,
        seed=True,
        negative_prompt=False,
        camera_control=True,
    ),
)


@dataclass(frozen=True)
class PreviewTask:
    card: Card
    move: Move
    size: tuple[int, int]
    fps: int
    frames: int
    last_frame: Image.Image | None = None

    @property
    def total_steps(self) -> int:
        return self.frames

    def idle(self, device: str) -> None:
        """A preview needs no model: only the next shot's encoder."""
        prepare_spare()

    def run(self, out: Path, on_step: OnStep, device: str = "cpu") -> None:
        """Render every frame into ``out``; ``on_step`` may raise to cancel."""
        width, height = self.size
        card_size = (round(width * MARGIN), round(height * MARGIN))
        still = draw_card(self.card, card_size)
        last = fit(self.last_frame, self.size) if self.last_frame is not None else None
        span = max(self.frames - 1, 1)
        with Mp4Writer.open(out, self.size, self.fps) as writer:
            for k in range(self.frames):
                t = k / span
                box = window(self.move, t, card_size)
                frame = still.resize(self.size, Image.Resampling.BILINEAR, box=box)
                if last is not None and t > 1 - CROSSFADE:
                    frame = Image.blend(frame, last, (t - 1 + CROSSFADE) / CROSSFADE)
                writer.write(frame)
                on_step(k + 1)


class PreviewModel:
    info = INFO

    def prepare(self, params: GenerationParams) -> PreviewTask:
        check_capabilities(self.info, params)
        image = decode_data_uri(params.image, "image") if params.image else None
        last = decode_data_uri(params.last_frame, "last_frame") if params.last_frame else None
        card = Card(kind=params.kind, prompt=params.prompt, title=params.title, background=image)
        return PreviewTask(
            card=card,
            move=parse_move(params.camera if params.camera is not None else params.prompt),
            size=(params.width, params.height),
            fps=params.fps,
            frames=params.frame_count,
            last_frame=last,
        )
