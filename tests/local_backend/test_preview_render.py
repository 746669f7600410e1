"""The preview renderer itself: exact frames, reproducible bytes, camera moves, inputs."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from backend_harness import decode, mean_abs_diff, probe
from PIL import Image

from local_backend.families.base import GenerationCanceled, GenerationParams, InvalidParams
from local_backend.families.preview import PreviewModel
from local_backend.families.preview.camera import MOVES, parse_move, window
from local_backend.families.preview.card import Card, draw_card, kind_colour


def params(**overrides: Any) -> GenerationParams:
    base: dict[str, Any] = {
        "model": "preview",
        "prompt": "A lighthouse on a cliff at dusk, waves crash below",
        "duration_s": 1,
        "fps": 8,
        "width": 160,
        "height": 90,
        "kind": "establishing",
        "title": "Opening",
    }
    return GenerationParams(**{**base, **overrides})


def render(tmp_path: Path, name: str = "out.mp4", **overrides: Any) -> Path:
    out = tmp_path / name
    PreviewModel().prepare(params(**overrides)).run(out, lambda _: None, "cpu")
    return out


def data_uri(colour: tuple[int, int, int], size: tuple[int, int] = (64, 36)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_request_gives_identical_bytes(tmp_path: Path) -> None:
    a, b = render(tmp_path, "a.mp4"), render(tmp_path, "b.mp4")
    other = render(tmp_path, "c.mp4", prompt="A different shot entirely")
    assert sha(a) == sha(b)
    assert sha(a) != sha(other)


@pytest.mark.parametrize(
    ("duration_s", "fps", "width", "height", "frames"),
    [(1, 8, 160, 90, 8), (1.3, 10, 96, 160, 13), (0.5, 25, 64, 64, 12), (2, 24, 320, 180, 48)],
)
def test_exact_frame_count_size_and_fps(
    tmp_path: Path, duration_s: float, fps: int, width: int, height: int, frames: int
) -> None:
    out = render(tmp_path, duration_s=duration_s, fps=fps, width=width, height=height)
    info = probe(out)
    assert (info.frames, info.width, info.height, info.fps) == (frames, width, height, fps)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")


def test_mp4_is_faststart(tmp_path: Path) -> None:
    data = render(tmp_path).read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


@pytest.mark.parametrize(
    ("words", "move"),
    [
        ("slow push in on her face", "zoom_in"),
        ("dolly-in", "zoom_in"),
        ("camera zooms in", "zoom_in"),
        ("pull back to reveal the city", "zoom_out"),
        ("zoom out", "zoom_out"),
        ("dolly out", "zoom_out"),
        ("pan left across the bay", "pan_left"),
        ("slowly pans right", "pan_right"),
        ("tilt up to the sky", "tilt_up"),
        ("tilt down", "tilt_down"),
        ("static shot", "static"),
        ("locked-off camera", "static"),
        ("on a tripod", "static"),
        ("tripod, then pan left", "static"),
        ("handheld", "push_in"),
        (None, "push_in"),
    ],
)
def test_camera_words_choose_the_move(words: str | None, move: str) -> None:
    assert parse_move(words).name == move


def test_every_move_stays_inside_the_card() -> None:
    card = (200, 112)
    for move in MOVES.values():
        for t in (0, 0.25, 0.5, 1):
            left, top, right, bottom = window(move, t, card)
            assert 0 <= left < right <= card[0] and 0 <= top < bottom <= card[1], move.name


@pytest.mark.parametrize("camera", ["pan left", "zoom in", "tilt up", None])
def test_a_camera_move_moves_the_picture(tmp_path: Path, camera: str | None) -> None:
    frames = decode(render(tmp_path, camera=camera), (160, 90))
    assert mean_abs_diff(frames[0], frames[-1]) > 2


def test_a_static_camera_holds_still(tmp_path: Path) -> None:
    frames = decode(render(tmp_path, camera="static, locked off"), (160, 90))
    assert len(frames) == 8
    assert all(mean_abs_diff(frames[0], f) < 0.5 for f in frames[1:])


def test_the_kind_sets_the_background(tmp_path: Path) -> None:
    assert kind_colour("action") != kind_colour("dialogue")
    assert kind_colour("my-own-kind") == kind_colour("my-own-kind")
    a = draw_card(Card(kind="action", prompt=""), (100, 100)).getpixel((2, 2))
    b = draw_card(Card(kind="dialogue", prompt=""), (100, 100)).getpixel((2, 2))
    assert a != b


def test_an_input_image_becomes_the_background(tmp_path: Path) -> None:
    out = render(tmp_path, image=data_uri((220, 20, 20)), camera="static")
    first = decode(out, (160, 90))[0]
    red, green = first[0::3], first[1::3]
    assert sum(red) > 3 * sum(green)


def test_a_last_frame_is_where_the_shot_ends(tmp_path: Path) -> None:
    out = render(tmp_path, last_frame=data_uri((20, 200, 20)), camera="static")
    frames = decode(out, (160, 90))
    solid = Image.new("RGB", (160, 90), (20, 200, 20)).tobytes()
    assert mean_abs_diff(frames[-1], solid) < 6
    assert mean_abs_diff(frames[0], solid) > 50


def test_long_text_and_long_words_wrap_without_error() -> None:
    card = Card(kind="dialogue", prompt="word " * 400 + "x" * 300, title="T" * 200)
    assert draw_card(card, (200, 112)).size == (200, 112)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"duration_s": 90}, "duration_s", "allowed 0.5..60"),
        ({"duration_s": 0.2}, "duration_s", "allowed 0.5..60"),
        ({"fps": 5}, "fps", "allowed 8..60"),
        ({"width": 161}, "width", "multiple of 2"),
        ({"height": 8}, "height", "at least 16"),
        ({"width": 2560, "height": 1440}, "width", "at most 1920"),
        ({"image": "https://example.com/a.png"}, "image", "data: URI"),
        ({"image": "data:image/png;base64,!!!"}, "image", "not a readable image"),
        ({"last_frame": "data:text/plain;base64,aGVsbG8="}, "last_frame", "not a readable"),
    ],
)
def test_bad_requests_are_refused_before_rendering(
    overrides: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidParams) as caught:
        PreviewModel().prepare(params(**overrides))
    assert caught.value.field == field
    assert words in caught.value.message


def test_cancel_inside_the_render_loop_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "x.mp4"
    task = PreviewModel().prepare(params(duration_s=60, fps=24))
    seen: list[int] = []

    def on_step(k: int) -> None:
        seen.append(k)
        if k == 3:
            raise GenerationCanceled

    with pytest.raises(GenerationCanceled):
        task.run(out, on_step, "cpu")
    assert seen == [1, 2, 3]
    assert list(tmp_path.iterdir()) == [], "a canceled render leaves no partial file"


def test_an_encoder_opened_ahead_gives_the_same_bytes_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idle device opens the next shot's encoder; a shot that fits takes it."""
    from local_backend.families import encode

    opened: list[str] = []
    real_open = encode.av.open
    monkeypatch.setattr(
        encode.av,
        "open",
        lambda path, *a, **k: opened.append(Path(path).name) or real_open(path, *a, **k),
    )
    encode.discard_spare()
    first = render(tmp_path, "first.mp4")
    PreviewModel().prepare(params()).idle("cpu")  # the runner's call when nothing waits
    second = render(tmp_path, "second.mp4")  # same folder, size and fps: takes the spare
    assert opened[0] == "first.mp4" and opened[1].startswith(".spare-") and len(opened) == 2
    assert sha(second) == sha(first)

    PreviewModel().prepare(params()).idle("cpu")
    other = render(tmp_path, "other.mp4", width=96, height=160)  # does not fit: a new one
    assert len(opened) == 4 and opened[3] == "other.mp4"
    assert probe(other).width == 96
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.mp4", "other.mp4", "second.mp4"]
    encode.discard_spare()
