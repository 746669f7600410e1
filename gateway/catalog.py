"""The model catalog: what each model accepts and what it costs.

The catalog is data (``catalog.toml`` next to this module, or an operator's file named
by ``REELGATE_CATALOG``) so a vendor's new duration or price is an edit, not a release.
Prices are written as decimal strings and held as integer micro-USD. A malformed
catalog fails at load with every problem named by model and key.

Some limits hold only together (Veo: 1080p and 4k only at 8 s; Runway text-to-video
only at 16:9 or 9:16). A model's ``rules`` override its limits under a condition
(``when = { resolution = ["1080p"] }``); :meth:`Capabilities.limits` applies them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.prompts import DIALECTS
from reelgate.types import Model, ModelCapabilities, ModelPrice

__all__ = [
    "Capabilities",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "Limits",
    "Mode",
    "Price",
    "Rule",
    "load_catalog",
    "micros",
    "parse_catalog",
    "resolution_px",
    "to_wire",
    "usd",
    "with_markup",
]

Mode = Literal["t2v", "i2v", "flf2v"]
_Resolution = Annotated[str, Field(pattern=r"^([1-9][0-9]{1,3}p|4k)$")]
_Ratio = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}:[1-9][0-9]{0,2}$")]
_Positive = Annotated[float, Field(gt=0)]
MICROS = 1_000_000


class CatalogError(ValueError):
    """A catalog or routing file that cannot be used; the message names each problem."""


def micros(amount: Decimal | str | int) -> int:
    """USD (a decimal string, never a float) to integer micro-USD; exact or an error."""
    if isinstance(amount, bool | float):
        raise ValueError('write amounts as decimal strings, e.g. "0.05"')
    try:
        value = Decimal(amount) * MICROS
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {amount!r}") from None
    if value < 0 or value != value.to_integral_value():
        raise ValueError(f"{amount} USD is negative or finer than a micro-USD")
    return int(value)


def with_markup(amount_micros: int, markup_bps: int | None) -> int:
    """A tenant's price for a catalog amount (+2000 bps: +20%; -1000: 10% off), rounded up."""
    if not markup_bps:
        return amount_micros
    return -(-amount_micros * (10_000 + markup_bps) // 10_000)


def usd(amount_micros: int) -> Decimal:
    """Integer micro-USD to a Decimal USD amount (six places)."""
    return Decimal(amount_micros).scaleb(-6)


def resolution_px(resolution: str) -> int:
    """The short side in pixels: ``720p`` -> 720, ``4k`` -> 2160."""
    return 2160 if resolution == "4k" else int(resolution[:-1])


class _Conf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Durations(_Conf):
    durations: tuple[_Positive, ...] | None = None
    duration_range: tuple[_Positive, _Positive] | None = None
    duration_step: _Positive | None = None

    @model_validator(mode="after")
    def _check_durations(self) -> _Durations:
        if self.duration_range and self.duration_range[0] >= self.duration_range[1]:
            raise ValueError("duration_range must be [min, max] with min < max")
        if self.durations is not None and not self.durations:
            raise ValueError("durations must not be empty")
        return self


@dataclass(frozen=True)
class Limits:
    """The values a model accepts for one mode (and resolution), rules applied."""

    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    fps: tuple[int, ...]
    durations: tuple[float, ...] | None
    duration_range: tuple[float, float] | None
    duration_step: float | None
    #: ``"1080p"`` when a resolution rule set the durations (for messages).
    durations_at: str | None = None


class RuleWhen(_Conf):
    mode: tuple[Mode, ...] | None = None
    resolution: tuple[_Resolution, ...] | None = None


class Rule(_Durations):
    """Limits that replace the model's own when ``when`` matches."""

    when: RuleWhen
    resolutions: tuple[_Resolution, ...] | None = None
    aspect_ratios: tuple[_Ratio, ...] | None = None
    fps: tuple[Annotated[int, Field(gt=0)], ...] | None = None

    @model_validator(mode="after")
    def _check_rule(self) -> Rule:
        if self.when.mode is None and self.when.resolution is None:
            raise ValueError("a rule needs when.mode or when.resolution")
        if self.when.resolution is not None and self.resolutions is not None:
            raise ValueError("a rule conditioned on resolution cannot set resolutions")
        if self.durations is not None and self.duration_range is not None:
            raise ValueError("set durations or duration_range, not both")
        return self

    def matches(self, mode: str, resolution: str | None) -> bool:
        if self.when.mode is not None and mode not in self.when.mode:
            return False
        if self.when.resolution is not None:
            return resolution is not None and resolution in self.when.resolution
        return True


class Capabilities(_Durations):
    modes: tuple[Mode, ...] = Field(min_length=1)
    resolutions: tuple[_Resolution, ...] = Field(min_length=1)
    aspect_ratios: tuple[_Ratio, ...] = Field(min_length=1)
    fps: tuple[Annotated[int, Field(gt=0)], ...] = Field(min_length=1)
    audio: bool = False
    negative_prompt: bool = False
    seed: bool = False
    camera_control: bool = False
    max_prompt_chars: int = Field(gt=0)
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _check_caps(self) -> Capabilities:
        if (self.durations is None) == (self.duration_range is None):
            raise ValueError("set exactly one of durations or duration_range")
        for rule in self.rules:
            extra = set(rule.resolutions or ()) | set(rule.when.resolution or ())
            if unknown := sorted(extra - set(self.resolutions)):
                raise ValueError(f"a rule names resolutions not offered: {', '.join(unknown)}")
        return self

    def limits(self, mode: str, resolution: str | None = None) -> Limits:
        """The limits for ``mode``; at a ``resolution``, its rules applied too."""
        out = Limits(
            self.resolutions,
            self.aspect_ratios,
            self.fps,
            self.durations,
            self.duration_range,
            self.duration_step,
        )
        for rule in self.rules:
            if not rule.matches(mode, resolution):
                continue
            changes: dict[str, Any] = {
                k: getattr(rule, k)
                for k in ("resolutions", "aspect_ratios", "fps", "duration_step")
                if getattr(rule, k) is not None
            }
            if rule.durations is not None or rule.duration_range is not None:
                changes |= {"durations": rule.durations, "duration_range": rule.duration_range}
                changes["durations_at"] = resolution if rule.when.resolution else None
            out = replace(out, **changes)
        return out


class Price(_Conf):
    """Per second by resolution, or per video; plus an audio surcharge per second."""

    per_second_micros: dict[_Resolution, int] = Field(
        default_factory=dict, validation_alias="per_second_usd"
    )
    per_video_micros: int | None = Field(default=None, validation_alias="per_video_usd")
    audio_per_second_micros: int | None = Field(
        default=None, validation_alias="audio_per_second_usd"
    )
    confirmed: bool = True

    @field_validator("per_video_micros", "audio_per_second_micros", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> int | None:
        return None if value is None else micros(value)

    @field_validator("per_second_micros", mode="before")
    @classmethod
    def _amounts(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: micros(v) for k, v in value.items()}


class CatalogEntry(_Conf):
    """One model: how to reach it, what it accepts, what it costs."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    adapter: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    vendor_model: str = Field(min_length=1)
    description: str | None = None
    dialect: str = "plain"
    #: 0..10, used by ``prefer = "quality"`` and ``"speed"``.
    quality: int = Field(ge=0, le=10)
    speed: int = Field(ge=0, le=10)
    #: A draft renderer (an animatic): ``prefer`` never ranks it above a real model.
    draft: bool = False
    capabilities: Capabilities
    price: Price

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if value not in DIALECTS:
            raise ValueError(f"unknown dialect {value!r}; known: {', '.join(DIALECTS)}")
        return value

    @model_validator(mode="after")
    def _priced(self) -> CatalogEntry:
        priced, res = self.price.per_second_micros, self.capabilities.resolutions
        if self.price.per_video_micros is None and not priced:
            raise ValueError("price needs per_second_usd or per_video_usd")
        missing = [r for r in res if r not in priced]
        if priced and missing and self.price.per_video_micros is None:
            raise ValueError(f"price.per_second_usd has no price for {', '.join(missing)}")
        return self


class Catalog:
    """Models by id, in catalog order."""

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        self._entries = {e.id: e for e in entries}

    def get(self, model_id: str) -> CatalogEntry | None:
        return self._entries.get(model_id)

    def __getitem__(self, model_id: str) -> CatalogEntry:
        return self._entries[model_id]

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._entries

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def ids(self) -> list[str]:
        return list(self._entries)


def _describe(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        out.append(f"{loc}: {msg}" if loc else msg)
    return out


def parse_catalog(text: str, source: str = "<catalog>") -> Catalog:
    """Parse catalog TOML; raise :class:`CatalogError` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{source}: invalid TOML: {e}") from None
    models, problems, entries = data.pop("models", None), [], []
    problems += [f"unknown top-level key {k!r} (expected [[models]])" for k in data]
    if not isinstance(models, list) or not models:
        problems.append("no models: expected one or more [[models]] tables")
        models = []
    seen: set[str] = set()
    for i, raw in enumerate(models):
        name = raw.get("id", "?") if isinstance(raw, dict) else "?"
        try:
            entry = CatalogEntry.model_validate(raw)
        except ValidationError as e:
            problems += [f"models[{i}] ({name}): {p}" for p in _describe(e)]
            continue
        if entry.id in seen:
            problems.append(f"models[{i}] ({name}): duplicate id")
        seen.add(entry.id)
        entries.append(entry)
    if problems:
        raise CatalogError(f"{source}: " + "; ".join(problems))
    return Catalog(entries)


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog at ``path``, or the one shipped with the gateway."""
    if path is None:
        text = resources.files("gateway").joinpath("catalog.toml").read_text("utf-8")
        return parse_catalog(text, "gateway/catalog.toml")
    try:
        text = Path(path).read_text("utf-8")
    except OSError as e:
        raise CatalogError(f"cannot read catalog {path}: {e.strerror or e}") from None
    return parse_catalog(text, str(path))


def to_wire(entry: CatalogEntry, configured: bool, reason: str | None = None) -> Model:
    """The public view of a model (``GET /v1/models``)."""
    caps, price = entry.capabilities, entry.price
    return Model(
        id=entry.id,
        adapter=entry.adapter,
        vendor_model=entry.vendor_model,
        description=entry.description,
        capabilities=ModelCapabilities(
            modes=list(caps.modes),
            durations=list(caps.durations) if caps.durations is not None else None,
            duration_range=caps.duration_range,
            resolutions=list(caps.resolutions),
            aspect_ratios=list(caps.aspect_ratios),
            fps=list(caps.fps),
            audio=caps.audio,
            negative_prompt=caps.negative_prompt,
            seed=caps.seed,
            camera_control=caps.camera_control,
            max_prompt_chars=caps.max_prompt_chars,
        ),
        price=ModelPrice(
            per_second_usd={r: usd(m) for r, m in price.per_second_micros.items()},
            per_video_usd=None if price.per_video_micros is None else usd(price.per_video_micros),
            audio_per_second_usd=None
            if price.audio_per_second_micros is None
            else usd(price.audio_per_second_micros),
            confirmed=price.confirmed,
        ),
        configured=configured,
        reason=None if configured else reason,
    )
