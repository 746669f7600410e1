"""Tiny random-weight Wan and LTX pipelines, built offline, for tests and the demo.

The real loading path (``from_pretrained`` on a local diffusers folder) is what
the backend runs in production; these pipelines let it run on a laptop CPU in
milliseconds. Their frames are noise: the weights are random. Every component is
built from config under a fixed seed, so the same call writes the same files.

    reelgate local-backend make-tiny DIR  # DIR/tiny-wan, tiny-wan-i2v, tiny-ltx, tiny-ltx-i2v,
                                          # and DIR/models.toml that serves them
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from local_backend.config import ModelEntry

__all__ = [
    "MODELS_FILE",
    "TINY_MODELS",
    "build",
    "build_all",
    "main",
    "make_tiny",
    "tiny_entries",
    "write_models_config",
]

#: Folder (and model id) → (family, mode).
TINY_MODELS: dict[str, tuple[str, str]] = {
    "tiny-wan": ("wan", "t2v"),
    "tiny-wan-i2v": ("wan", "i2v"),
    "tiny-ltx": ("ltx", "t2v"),
    "tiny-ltx-i2v": ("ltx", "i2v"),
}
MODELS_FILE = "models.toml"
TEXT_DIM = 32  # the text encoder's d_model = Wan's text_dim = LTX's caption_channels
_WORDS = "a an the of on in at and with red blue green sky sea cliff light house night"


def _lib(name: str) -> Any:
    """torch, diffusers or transformers, imported on use (untyped: built by config)."""
    return importlib.import_module(name)


def _seeded(seed: int) -> None:
    _lib("torch").manual_seed(seed)


def _tokenizer() -> Any:
    """A Unigram T5 tokenizer built in memory: no vocab file, no hub."""
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"
    pieces = ["<pad>", "</s>", "<unk>", "▁", *(f"▁{w}" for w in _WORDS.split()), *chars]
    vocab = [(p, 0.0 if i < 3 else -float(i)) for i, p in enumerate(pieces)]
    return _lib("transformers").T5Tokenizer(vocab=vocab, extra_ids=0)


def _text_encoder(kind: str, vocab_size: int) -> Any:
    lib = _lib("transformers")
    prefix = "UMT5" if kind == "umt5" else "T5"
    config = getattr(lib, f"{prefix}Config")(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
    )
    encoder = getattr(lib, f"{prefix}EncoderModel")(config)
    return encoder.eval()  # fresh transformers models start in training mode


def _wan(i2v: bool) -> Any:
    d = _lib("diffusers")
    tokenizer = _tokenizer()
    _seeded(0)
    vae = d.AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    _seeded(0)
    text_encoder = _text_encoder("umt5", len(tokenizer))
    _seeded(0)
    transformer = d.WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36 if i2v else 16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4 if i2v else None,
    )
    parts = {
        "tokenizer": tokenizer,
        "text_encoder": text_encoder,
        "vae": vae,
        "scheduler": d.FlowMatchEulerDiscreteScheduler(shift=7.0),
        "transformer": transformer,
    }
    if not i2v:
        return d.WanPipeline(**parts)
    t = _lib("transformers")
    _seeded(0)
    image_encoder = t.CLIPVisionModel(
        t.CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    ).eval()
    processor = t.CLIPImageProcessorPil(crop_size=32, size=32)
    return d.WanImageToVideoPipeline(
        **parts, image_encoder=image_encoder, image_processor=processor
    )


def _ltx(i2v: bool) -> Any:
    d = _lib("diffusers")
    tokenizer = _tokenizer()
    _seeded(0)
    vae = d.AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
    )
    _seeded(0)
    text_encoder = _text_encoder("t5", len(tokenizer))
    _seeded(0)
    transformer = d.LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=TEXT_DIM,
        num_layers=1,
        caption_channels=TEXT_DIM,
    )
    cls = d.LTXImageToVideoPipeline if i2v else d.LTXPipeline
    return cls(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=d.FlowMatchEulerDiscreteScheduler(),
        transformer=transformer,
    )


_BUILDERS: dict[str, Callable[[bool], Any]] = {"wan": _wan, "ltx": _ltx}


def build(name: str) -> Any:
    """The in-memory pipeline for one of :data:`TINY_MODELS`."""
    family, mode = TINY_MODELS[name]
    return _BUILDERS[family](mode == "i2v")


def build_all(root: Path) -> list[ModelEntry]:
    """Save every tiny pipeline under ``root``; returns their model entries."""
    root.mkdir(parents=True, exist_ok=True)
    for name in TINY_MODELS:
        build(name).save_pretrained(root / name)
    return tiny_entries(root)


def tiny_entries(root: Path) -> list[ModelEntry]:
    """Models-config entries serving the tiny pipelines saved under ``root``."""
    return [
        ModelEntry(
            id=name,
            family=family,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
            path=str(root / name),
            description=f"Tiny random-weight {family} {mode} (noise frames; for tests and demos).",
            steps=4,
            guidance_scale=5.0,
            max_long_side=256,
            max_frames=33,
        )
        for name, (family, mode) in TINY_MODELS.items()
    ]


def write_models_config(root: Path, entries: Sequence[ModelEntry]) -> Path:
    """``root/models.toml`` serving ``entries`` (paths relative to ``root``)."""
    lines = [
        "# Written by `reelgate local-backend make-tiny`: tiny random-weight pipelines.",
        "# Their frames are noise (the weights are random); they run the real diffusers",
        "# path offline. Serve them with `reelgate local-backend --models` or",
        "# REELGATE_LOCAL_MODELS for the gateway's in-process backend.",
    ]
    for entry in entries:
        data = entry.model_dump(mode="json", exclude_defaults=True)
        path = Path(entry.path)
        if path.is_absolute() and path.parent == root.absolute():
            data["path"] = path.name
        lines += ["", "[[models]]", *(f"{k} = {_toml(v)}" for k, v in data.items())]
    target = root / MODELS_FILE
    target.write_text("\n".join(lines) + "\n")
    return target


def _toml(value: Any) -> str:
    """A TOML value for the JSON-like data of a model entry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string uses JSON's escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def make_tiny(root: Path, *, force: bool = False) -> Path:
    """Build the tiny pipelines under ``root`` (kept if already there) and their config."""
    root = root.absolute()
    missing = [n for n in TINY_MODELS if force or not (root / n / "model_index.json").is_file()]
    if missing:
        root.mkdir(parents=True, exist_ok=True)
        for name in missing:
            build(name).save_pretrained(root / name)
    return write_models_config(root, tiny_entries(root))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_backend.tiny", description=__doc__)
    parser.add_argument("dir", type=Path, help="where to save the tiny pipelines")
    parser.add_argument("--force", action="store_true", help="rebuild folders already there")
    args = parser.parse_args(argv)
    print(make_tiny(args.dir, force=args.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
