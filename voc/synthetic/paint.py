"""How a synthetic object looks: a palette colour (often near its class hue) that stands out from
the background, and its class's texture pattern in that colour and a contrasting one."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from voc.constants import VOC_CLASSES

CLASS_HUE_BIAS_PROB = 0.9
"""Chance that an object's hue is near its class hue (weak colour cue); otherwise any hue."""
CLASS_HUE_SPREAD = 0.04
SATURATION_RANGE = (0.2, 1.0)
VALUE_RANGE = (0.15, 1.0)
MIN_CONTRAST = 55.0
"""Minimum luma difference between an object and the mean background under it."""
PATTERN_KINDS: tuple[str, ...] = (
    "hstripes", "vstripes", "dstripes", "checker", "dchecker", "dots", "grid", "dgrid", "rings", "waves",
)
PATTERN_PERIODS: tuple[float, ...] = (16.0, 30.0)
"""Pattern periods in pixels of a 375 px short side (scaled with the image)."""
CLASS_PATTERNS: dict[str, tuple[str, float]] = {
    name: (PATTERN_KINDS[i % len(PATTERN_KINDS)], PATTERN_PERIODS[i // len(PATTERN_KINDS)])
    for i, name in enumerate(VOC_CLASSES)
}
"""Each class's (pattern kind, period): 10 kinds x 2 periods, one per class. Diagonal kinds are
drawn at 45 or 135 degrees at random, so a horizontal flip maps a class onto itself."""
SHADING_STRENGTH = 0.2


def random_color(rng: np.random.Generator, hue: float | None = None) -> tuple[int, int, int]:
    """An RGB colour from the shared palette, optionally near ``hue``."""
    h = float(rng.random()) if hue is None else (hue + float(rng.normal(0, CLASS_HUE_SPREAD))) % 1.0
    s = float(rng.uniform(*SATURATION_RANGE))
    v = float(rng.uniform(*VALUE_RANGE))
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _luma(color: Sequence[float]) -> float:
    """ITU-R 601 luma of an RGB colour."""
    return 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]


def _pattern(kind: str, period: float, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A binary texture ``[h, w]`` of one of :data:`PATTERN_KINDS`, at a random phase."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx += float(rng.uniform(0, period))
    yy += float(rng.uniform(0, period))
    sign = 1.0 if rng.random() < 0.5 else -1.0  # 45 or 135 degrees for the diagonal kinds
    u, v = (xx + sign * yy) / math.sqrt(2), (xx - sign * yy) / math.sqrt(2)
    thin = period / 4
    if kind == "hstripes":
        out = (yy // (period / 2)) % 2 == 0
    elif kind == "vstripes":
        out = (xx // (period / 2)) % 2 == 0
    elif kind == "dstripes":
        out = (u // (period / 2)) % 2 == 0
    elif kind == "checker":
        out = (xx // period + yy // period) % 2 == 0
    elif kind == "dchecker":
        out = (u // period + v // period) % 2 == 0
    elif kind == "dots":
        out = (xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2 < (period / 3) ** 2
    elif kind == "grid":
        out = (xx % period < thin) | (yy % period < thin)
    elif kind == "dgrid":
        out = (u % period < thin) | (v % period < thin)
    elif kind == "rings":
        r = np.hypot(xx - float(rng.uniform(0, w)), yy - float(rng.uniform(0, h)))
        out = (r // (period / 2)) % 2 == 0
    elif kind == "waves":
        out = ((yy + np.sin(xx * 2 * math.pi / (2 * period)) * period / 2) // (period / 2)) % 2 == 0
    else:
        raise ValueError(f"unknown pattern kind {kind!r}")
    return out


def _contrasting(color: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A second colour for a pattern: the same hue, much lighter or darker."""
    c = np.array(color, dtype=np.float32)
    if _luma(color) > 110:
        return c * float(rng.uniform(0.15, 0.45))
    return c + (255 - c) * float(rng.uniform(0.55, 0.85))


def fill_image(
    name: str, color: tuple[int, int, int], size: tuple[int, int], short: int, rng: np.random.Generator
) -> Image.Image:
    """The object's paint: its class pattern in its colour and a contrasting one (a texture cue,
    as fur, wheels or windows are in VOC), with a gentle shading ramp."""
    w, h = size
    kind, period = CLASS_PATTERNS[name]
    mask = _pattern(kind, period * short / 375.0, size, rng)[:, :, None]
    arr = np.where(mask, np.array(color, dtype=np.float32), _contrasting(color, rng))
    ang = rng.uniform(0, 2 * math.pi)
    ramp = np.cos(ang) * np.linspace(-1, 1, w)[None, :] + np.sin(ang) * np.linspace(-1, 1, h)[:, None]
    arr = arr * (1 + SHADING_STRENGTH * ramp[:, :, None])
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def object_color(name: str, region_luma: float, rng: np.random.Generator) -> tuple[int, int, int]:
    """A palette colour (sometimes near the class hue) that stands out from the background."""
    hue = _class_hue(name) if rng.random() < CLASS_HUE_BIAS_PROB else None
    color = random_color(rng, hue)
    if abs(_luma(color) - region_luma) >= MIN_CONTRAST:
        return color
    h, s, _ = colorsys.rgb_to_hsv(*(v / 255 for v in color))
    v = float(rng.uniform(0.05, 0.3) if region_luma > 127 else rng.uniform(0.8, 1.0))
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _class_hue(name: str) -> float:
    """A fixed hue per class, spread around the colour wheel."""
    return (VOC_CLASSES.index(name) * 0.618034) % 1.0
