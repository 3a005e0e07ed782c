"""A deterministic synthetic PASCAL VOC generator for tests, CI and offline benchmark runs.

:func:`generate_synthetic_voc` writes a real VOC-format tree::

    root/VOCdevkit/VOC<year>/JPEGImages/<id>.jpg
                             Annotations/<id>.xml
                             ImageSets/Main/{train,val,trainval[,test]}.txt
                             ImageSets/Main/<class>_<split>.txt
    root/synthetic.json      (written last: marks the tree complete)

Each image shows 1-4 VOC classes as filled silhouettes (see :mod:`voc.shapes`) at varied
scale, rotation, colour and position over a cluttered background. The class sets follow the
VOC2007 trainval statistics (:data:`CLASS_PRIORS`, :data:`CARDINALITY_PROBS`). Every image
is drawn from its own generator seeded by ``(seed, split, index)``, so an image does not
depend on the sizes of the splits, and the same arguments give byte-identical files.
"""

from __future__ import annotations

import colorsys
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from voc.constants import VOC_CLASSES, YEARS
from voc.shapes import DISTRACTOR_KINDS, Keypoints, draw_distractor, draw_glyph, glyph_size

logger = logging.getLogger(__name__)

SYNTHETIC_GENERATOR_VERSION = 1
"""Bump whenever the generated files change, so cached trees are regenerated."""

MARKER_NAME = "synthetic.json"

# --- label statistics (measured from the real VOC2007 trainval ImageSets) --------------------

CLASS_PRIORS: dict[str, float] = {
    "aeroplane": 0.047, "bicycle": 0.048, "bird": 0.066, "boat": 0.036, "bottle": 0.049,
    "bus": 0.037, "car": 0.142, "cat": 0.067, "chair": 0.089, "cow": 0.028,
    "diningtable": 0.040, "dog": 0.084, "horse": 0.057, "motorbike": 0.049, "person": 0.401,
    "pottedplant": 0.049, "sheep": 0.019, "sofa": 0.046, "train": 0.052, "tvmonitor": 0.051,
}
"""Fraction of images with a non-difficult object of each class (label 1)."""

CARDINALITY_PROBS: tuple[float, ...] = (0.619, 0.313, 0.060, 0.008)
"""P(an image has k = 1, 2, 3, 4 positive classes); VOC's rare 5-6 are folded into 4."""

DIFFICULT_ONLY_RATES: dict[str, float] = {
    "aeroplane": 0.0004, "bicycle": 0.0024, "bird": 0.0006, "boat": 0.0014, "bottle": 0.0036,
    "bus": 0.0022, "car": 0.0096, "cat": 0.0014, "chair": 0.0253, "cow": 0.0010,
    "diningtable": 0.0126, "dog": 0.0018, "horse": 0.0014, "motorbike": 0.0008, "person": 0.0174,
    "pottedplant": 0.0056, "sheep": 0.0002, "sofa": 0.0285, "train": 0.0004, "tvmonitor": 0.0046,
}
"""Fraction of images whose only objects of a class are difficult (label 0)."""

EXTRA_INSTANCE_PROB = 0.2
"""Chance of one more non-difficult instance of a positive class (repeated, geometric)."""
HERD_CLASSES: frozenset[str] = frozenset({"person", "car", "chair", "sheep", "cow", "bottle", "boat", "bird"})
HERD_EXTRA_INSTANCE_PROB = 0.35
MAX_INSTANCES_PER_CLASS = 4
EXTRA_DIFFICULT_PROB = 0.12
"""Chance that a positive class also gets a small difficult instance."""
MAX_OBJECTS = 8

# --- geometry ------------------------------------------------------------------------------

IMAGE_SIZES: tuple[tuple[int, int, float], ...] = (
    (500, 375, 0.36), (375, 500, 0.10), (500, 333, 0.17), (333, 500, 0.06), (500, 334, 0.03),
    (500, 332, 0.02), (500, 400, 0.03), (500, 366, 0.03), (500, 335, 0.03), (500, 281, 0.02),
    (500, 500, 0.02),
)
"""Common VOC (width, height, probability); the rest get 500 x U(250, 499) or its transpose."""
OTHER_SIZE_RANGE = (250, 499)
OTHER_SIZE_LANDSCAPE_PROB = 0.75

SCALE_RANGES: dict[str, tuple[float, float]] = {
    "main": (0.4, 0.75),
    "extra": (0.15, 0.45),
    "difficult": (0.045, 0.075),
}
"""Longer glyph side / shorter image side (uniform): the first instance of each positive class
("main"), further non-difficult instances ("extra"), and difficult objects."""
DIFFICULT_MAX_SIDE = 0.09
"""An object is ``difficult`` iff the longer side of its box < this x the shorter image side."""
ROTATION_MAX_DEG = 35.0
FLIP_PROB = 0.5
TRUNCATION_PROB = 0.2
MIN_VISIBLE = 0.45
"""A truncated object keeps at least this fraction of its box width and height in the image."""
MAX_COVER = 0.45
"""A later (smaller) object may cover at most this fraction of an earlier object's box."""
PLACEMENT_TRIES = 8
PART_PROB = 0.35
"""Chance that a person gets ``<part>`` boxes (head, hands, feet)."""
SIDE_VIEW_CLASSES: frozenset[str] = frozenset({
    "bicycle", "bird", "boat", "bus", "car", "chair", "cow", "dog", "horse", "motorbike",
    "sheep", "sofa", "train",
})
UNSPECIFIED_POSE_PROB = 0.3

# --- appearance ----------------------------------------------------------------------------

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

# Integer ranges (low, high) below are half-open, as numpy's ``Generator.integers``.
BACKGROUND_GRID_RANGE = (2, 7)
"""Cells of the coarse colour grid that is smoothed into the background gradient."""
TEXTURE_CELL_RANGE = (6, 24)
TEXTURE_AMPLITUDE = 28
CLUTTER_LINES_RANGE = (1, 5)
CLUTTER_LINE_WIDTH_RANGE = (1, 5)
CLUTTER_SHAPES_RANGE = (1, 4)
CLUTTER_SIZE_RANGE = (0.05, 0.3)
HATCH_PATCH_PROB = 0.1
OCCLUDERS_RANGE = (0, 3)
OCCLUDER_SIZE_RANGE = (0.03, 0.1)
NOISE_AMPLITUDE = 10
JPEG_QUALITY = 90

# --- layout --------------------------------------------------------------------------------

SPLIT_CODES: dict[str, int] = {"train": 1, "val": 2, "test": 3}
"""Image number of split index i is ``ID_STRIDE * i + code``: ids interleave, as VOC's do."""
ID_STRIDE = 3
MAX_IMAGE_NUMBER = 999_999
LIST_EOL: dict[str, str] = {"2007": "\r\n", "2012": "\n"}
"""Line ending of ImageSets files (the real VOC2007 lists are CRLF)."""
XML_OWNER: tuple[str, ...] = ("\t<owner>", "\t\t<flickrid>voc-bench</flickrid>", "\t\t<name>synthetic</name>", "\t</owner>")
"""The ``<owner>`` block that the VOC2007 files have (VOC2012 files have none)."""
XML_SOURCE: dict[str, tuple[str, str]] = {
    "2007": ("The VOC2007 Database", "PASCAL VOC2007"),
    "2012": ("The VOC2012 Database", "PASCAL VOC2012"),
}


Box = tuple[int, int, int, int]
"""A VOC box: 1-based inclusive (xmin, ymin, xmax, ymax) pixels."""


@dataclass(frozen=True)
class SyntheticObject:
    """One annotated object: VOC class, 1-based inclusive pixel box and flags."""

    name: str
    box: Box
    truncated: bool
    difficult: bool
    pose: str = "Unspecified"
    parts: tuple[tuple[str, Box], ...] = field(default=())


# --- class sets ----------------------------------------------------------------------------


def _inclusion_probabilities(weights: np.ndarray, k: int) -> np.ndarray:
    """P(class i is among k classes drawn without replacement with probability ∝ weights)."""
    n = len(weights)
    bits = 1 << np.arange(n, dtype=np.int64)
    states, probs, used_w = np.zeros(1, np.int64), np.ones(1), np.zeros(1)
    incl = np.zeros(n)
    for _ in range(k):
        free = (states[:, None] & bits[None, :]) == 0
        step = probs[:, None] * weights[None, :] / (weights.sum() - used_w)[:, None] * free
        incl += step.sum(axis=0)
        nxt = (states[:, None] | bits[None, :]).ravel()
        keep = free.ravel()
        states, inverse = np.unique(nxt[keep], return_inverse=True)
        probs = np.bincount(inverse, weights=step.ravel()[keep])
        used_w = np.array([weights[(s & bits) != 0].sum() for s in states])
    return incl


def _marginals(weights: np.ndarray) -> np.ndarray:
    """Per-class positive rate when the cardinality follows :data:`CARDINALITY_PROBS`."""
    return sum(p * _inclusion_probabilities(weights, k + 1) for k, p in enumerate(CARDINALITY_PROBS))


@lru_cache(maxsize=1)
def class_weights() -> tuple[float, ...]:
    """Sampling weights whose without-replacement marginals match :data:`CLASS_PRIORS`.

    Fixed-point iteration ``w <- w * target / marginal(w)`` on exact marginals.
    """
    target = np.array([CLASS_PRIORS[c] for c in VOC_CLASSES])
    weights = target.copy()
    for _ in range(200):
        marg = _marginals(weights)
        if np.max(np.abs(marg / target - 1)) < 1e-6:
            break
        weights = weights * target / marg
        weights /= weights.sum()
    return tuple(float(w) for w in weights)


def sample_class_set(rng: np.random.Generator) -> tuple[str, ...]:
    """The positive classes of one image, in canonical order (cardinality, then classes)."""
    k = 1 + int(rng.choice(len(CARDINALITY_PROBS), p=CARDINALITY_PROBS))
    weights = np.array(class_weights())
    chosen = rng.choice(len(VOC_CLASSES), size=k, replace=False, p=weights / weights.sum())
    return tuple(VOC_CLASSES[i] for i in sorted(chosen))


def _plan_instances(rng: np.random.Generator) -> list[tuple[str, str]]:
    """(class, kind) for every object of one image, kind a key of :data:`SCALE_RANGES`.

    Every image has a non-difficult ("main") object of each of its positive classes.
    """
    positives = sample_class_set(rng)
    plan = [(name, "main") for name in positives]
    for name in positives:
        p_more = HERD_EXTRA_INSTANCE_PROB if name in HERD_CLASSES else EXTRA_INSTANCE_PROB
        count = 1
        while count < MAX_INSTANCES_PER_CLASS and rng.random() < p_more:
            plan.append((name, "extra"))
            count += 1
        if rng.random() < EXTRA_DIFFICULT_PROB:
            plan.append((name, "difficult"))
    rates = np.array([DIFFICULT_ONLY_RATES[c] for c in VOC_CLASSES])
    if rng.random() < rates.sum():
        plan.append((VOC_CLASSES[int(rng.choice(len(rates), p=rates / rates.sum()))], "difficult"))
    return plan[:MAX_OBJECTS]


# --- drawing -------------------------------------------------------------------------------


def sample_image_size(rng: np.random.Generator) -> tuple[int, int]:
    """A VOC-like (width, height)."""
    probs = np.array([p for _, _, p in IMAGE_SIZES])
    i = int(rng.choice(len(probs) + 1, p=[*probs, 1 - probs.sum()]))
    if i < len(IMAGE_SIZES):
        return IMAGE_SIZES[i][0], IMAGE_SIZES[i][1]
    other = int(rng.integers(OTHER_SIZE_RANGE[0], OTHER_SIZE_RANGE[1] + 1))
    return (500, other) if rng.random() < OTHER_SIZE_LANDSCAPE_PROB else (other, 500)


def _random_color(rng: np.random.Generator, hue: float | None = None) -> tuple[int, int, int]:
    """An RGB colour from the shared palette, optionally near ``hue``."""
    h = float(rng.random()) if hue is None else (hue + float(rng.normal(0, CLASS_HUE_SPREAD))) % 1.0
    s = float(rng.uniform(*SATURATION_RANGE))
    v = float(rng.uniform(*VALUE_RANGE))
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _luma(color: Sequence[float]) -> float:
    """ITU-R 601 luma of an RGB colour."""
    return 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]


def _background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A smooth multi-colour gradient plus blotchy mid-frequency texture."""
    w, h = size
    gx, gy = (int(v) for v in rng.integers(*BACKGROUND_GRID_RANGE, size=2))
    bases = np.array([_random_color(rng) for _ in range(3)], dtype=np.float32)
    mix = rng.dirichlet(np.ones(3) * 0.7, size=(gy, gx)).astype(np.float32)
    grid = np.clip(mix @ bases + rng.normal(0, 20, (gy, gx, 3)), 0, 255).astype(np.uint8)
    base = np.asarray(Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    cell = int(rng.integers(*TEXTURE_CELL_RANGE))
    tex_small = rng.integers(-TEXTURE_AMPLITUDE, TEXTURE_AMPLITUDE + 1, (h // cell + 2, w // cell + 2), dtype=np.int16)
    tex_img = Image.fromarray((tex_small + 128).astype(np.uint8)).resize(
        ((w // cell + 2) * cell, (h // cell + 2) * cell), Image.Resampling.BILINEAR)
    tex = np.asarray(tex_img, dtype=np.int16)[:h, :w, None] - 128
    return Image.fromarray(np.clip(base + tex, 0, 255).astype(np.uint8))


def _clutter(img: Image.Image, rng: np.random.Generator, short: int) -> None:
    """Random lines, a hatched patch and distractor shapes (none of them a class)."""
    w, h = img.size
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(*CLUTTER_LINES_RANGE))):
        x0, x1 = rng.uniform(-0.1, 1.1, 2) * w
        y0, y1 = rng.uniform(-0.1, 1.1, 2) * h
        draw.line((x0, y0, x1, y1), fill=_random_color(rng), width=int(rng.integers(*CLUTTER_LINE_WIDTH_RANGE)))
    if rng.random() < HATCH_PATCH_PROB:
        _hatch(draw, rng, w, h, short)
    for _ in range(int(rng.integers(*CLUTTER_SHAPES_RANGE))):
        _distractor(draw, rng, w, h, short, CLUTTER_SIZE_RANGE)


def _hatch(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, short: int) -> None:
    """A patch of parallel lines (a fence/stripe texture)."""
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    half = rng.uniform(0.1, 0.3) * short
    ang = rng.uniform(0, math.pi)
    dx, dy = math.cos(ang), math.sin(ang)
    gap = rng.uniform(4, 12)
    color, width = _random_color(rng), int(rng.integers(1, 4))
    for k in range(int(2 * half / gap)):
        off = -half + k * gap
        px, py = cx - dy * off, cy + dx * off
        draw.line((px - dx * half, py - dy * half, px + dx * half, py + dy * half), fill=color, width=width)


def _distractor(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, short: int, size_range: tuple[float, float]
) -> None:
    """One random distractor shape anywhere in the image."""
    kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
    center = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
    draw_distractor(draw, kind, center, float(rng.uniform(*size_range)) * short, _random_color(rng), rng)


_BINARY_LUT = [0] * 96 + [255] * 160


@dataclass
class _Layer:
    """A rotated glyph mask ready to paste, with its tight box inside the mask."""

    mask: Image.Image
    bbox: tuple[int, int, int, int]  # 0-based, half-open, in mask pixels
    keypoints: Keypoints
    pose: str


def _make_layer(name: str, long_side: float, rng: np.random.Generator) -> _Layer:
    """Draws, flips and rotates one class glyph."""
    mask, keypoints = draw_glyph(name, glyph_size(name, long_side), rng)
    w, h = mask.size
    flipped = bool(rng.random() < FLIP_PROB)
    if flipped:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        keypoints = {k: [(w - 1 - x, y, r) for x, y, r in pts] for k, pts in keypoints.items()}
    angle = float(rng.uniform(-ROTATION_MAX_DEG, ROTATION_MAX_DEG))
    mask = mask.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    keypoints = _rotate_points(keypoints, angle, (w, h), mask.size)
    bbox = mask.point(_BINARY_LUT).getbbox() or (0, 0, mask.size[0], mask.size[1])
    return _Layer(mask, bbox, keypoints, _pose(name, flipped, rng))


def _rotate_points(keypoints: Keypoints, angle: float, old: tuple[int, int], new: tuple[int, int]) -> Keypoints:
    """Maps points through PIL's counter-clockwise ``rotate(angle, expand=True)``."""
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    (ocx, ocy), (ncx, ncy) = (old[0] / 2, old[1] / 2), (new[0] / 2, new[1] / 2)
    out: Keypoints = {}
    for part, pts in keypoints.items():
        out[part] = [
            (ncx + (x - ocx) * cos + (y - ocy) * sin, ncy - (x - ocx) * sin + (y - ocy) * cos, r)
            for x, y, r in pts
        ]
    return out


def _pose(name: str, flipped: bool, rng: np.random.Generator) -> str:
    """VOC pose: glyphs face right unless flipped; some are left Unspecified, as in VOC."""
    if rng.random() < UNSPECIFIED_POSE_PROB:
        return "Unspecified"
    if name in SIDE_VIEW_CLASSES:
        return "Left" if flipped else "Right"
    return "Frontal" if name == "person" else "Unspecified"


def _clip_box(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> Box | None:
    """A 0-based half-open pixel box clipped to the image -> 1-based inclusive VOC box."""
    cx0, cy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    cx1, cy1 = min(w, math.ceil(x1)), min(h, math.ceil(y1))
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return None
    return cx0 + 1, cy0 + 1, cx1, cy1


def _cover(inner: Box, outer: Box) -> float:
    """Fraction of box ``inner`` covered by box ``outer`` (both VOC boxes)."""
    ix = min(inner[2], outer[2]) - max(inner[0], outer[0]) + 1
    iy = min(inner[3], outer[3]) - max(inner[1], outer[1]) + 1
    if ix <= 0 or iy <= 0:
        return 0.0
    return ix * iy / ((inner[2] - inner[0] + 1) * (inner[3] - inner[1] + 1))


def _is_difficult(box: Box, short: int) -> bool:
    """The difficult rule: the longer box side is below DIFFICULT_MAX_SIDE of the short side."""
    return max(box[2] - box[0] + 1, box[3] - box[1] + 1) < DIFFICULT_MAX_SIDE * short


def _offset_range(lo: int, hi: int, size: int, truncate: bool) -> tuple[float, float]:
    """Range of the paste offset so that the box [lo, hi) lands inside [0, size)."""
    extent = hi - lo
    if truncate:
        keep = MIN_VISIBLE * extent
        return -hi + keep, size - lo - keep
    if extent >= size:
        return (size - extent) / 2 - lo, (size - extent) / 2 - lo
    return -lo, size - hi


def _place(
    layer: _Layer, size: tuple[int, int], placed: list[Box], truncate: bool,
    rng: np.random.Generator,
) -> tuple[tuple[int, int], Box] | None:
    """Best of a few random offsets: least cover of earlier boxes. None if nothing fits."""
    w, h = size
    bx0, by0, bx1, by1 = layer.bbox
    xr, yr = _offset_range(bx0, bx1, w, truncate), _offset_range(by0, by1, h, truncate)
    best = None
    for _ in range(PLACEMENT_TRIES):
        ox, oy = round(rng.uniform(*xr)), round(rng.uniform(*yr))
        box = _clip_box(ox + bx0, oy + by0, ox + bx1, oy + by1, w, h)
        if box is None:
            continue
        cover = max((_cover(prev, box) for prev in placed), default=0.0)
        if best is None or cover < best[0]:
            best = (cover, (ox, oy), box)
        if cover <= MAX_COVER:
            break
    return None if best is None else (best[1], best[2])


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


def _fill_image(
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


def _object_color(name: str, region_luma: float, rng: np.random.Generator) -> tuple[int, int, int]:
    """A palette colour (sometimes near the class hue) that stands out from the background."""
    hue = _class_hue(name) if rng.random() < CLASS_HUE_BIAS_PROB else None
    color = _random_color(rng, hue)
    if abs(_luma(color) - region_luma) >= MIN_CONTRAST:
        return color
    h, s, _ = colorsys.rgb_to_hsv(*(v / 255 for v in color))
    v = float(rng.uniform(0.05, 0.3) if region_luma > 127 else rng.uniform(0.8, 1.0))
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _class_hue(name: str) -> float:
    """A fixed hue per class, spread around the colour wheel."""
    return (VOC_CLASSES.index(name) * 0.618034) % 1.0


def _region_luma(small: np.ndarray, box: Box, scale: float) -> float:
    """Mean luma of a downscaled image under a VOC box."""
    x0, y0 = int((box[0] - 1) / scale), int((box[1] - 1) / scale)
    x1, y1 = max(x0 + 1, int(box[2] / scale)), max(y0 + 1, int(box[3] / scale))
    patch = small[y0:y1, x0:x1]
    return float(patch.mean()) if patch.size else 127.0


def _part_boxes(layer: _Layer, offset: tuple[int, int], size: tuple[int, int]) -> tuple[tuple[str, Box], ...]:
    """Person part boxes (head, hands, feet) in image coordinates, clipped; off-image parts dropped."""
    parts = []
    for part in ("head", "hand", "foot"):
        for x, y, r in layer.keypoints.get(part, []):
            box = _clip_box(offset[0] + x - r, offset[1] + y - r, offset[0] + x + r + 1, offset[1] + y + r + 1, *size)
            if box is not None:
                parts.append((part, box))
    return tuple(parts)


def _add_object(
    img: Image.Image, small_luma: np.ndarray, name: str, want_difficult: bool, scale: float,
    placed: list[Box], rng: np.random.Generator,
) -> SyntheticObject | None:
    """Places and paints one object so that its difficult flag comes out as planned."""
    size = img.size
    short = min(size)
    truncate = bool(rng.random() < TRUNCATION_PROB) and not want_difficult
    for attempt in range(12):
        layer = _make_layer(name, scale * short, rng)
        spot = _place(layer, size, placed, truncate, rng)
        if spot is not None and _is_difficult(spot[1], short) == want_difficult:
            break
        scale *= 0.8 if want_difficult else 1.2
        truncate = False
    else:
        return None
    (ox, oy), box = spot
    color = _object_color(name, _region_luma(small_luma, box, size[0] / small_luma.shape[1]), rng)
    img.paste(_fill_image(name, color, layer.mask.size, short, rng), (ox, oy), layer.mask)
    placed.append(box)
    bx0, by0, bx1, by1 = layer.bbox
    truncated = ox + bx0 < 0 or oy + by0 < 0 or ox + bx1 > size[0] or oy + by1 > size[1]
    parts = _part_boxes(layer, (ox, oy), size) if name == "person" and rng.random() < PART_PROB else ()
    return SyntheticObject(name, box, truncated, want_difficult, layer.pose, parts)


def _add_noise(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Per-pixel luma noise over the whole image."""
    w, h = img.size
    noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, (h, w, 1), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8))


def image_rngs(seed: int, split: str, index: int) -> list[np.random.Generator]:
    """Independent generators (plan, background, objects) of one image, from (seed, split, index) only."""
    children = np.random.SeedSequence([seed, SPLIT_CODES[split], index]).spawn(3)
    return [np.random.default_rng(s) for s in children]


def render_synthetic_image(seed: int, split: str, index: int) -> tuple[Image.Image, list[SyntheticObject]]:
    """The RGB image and annotated objects of image ``index`` of ``split``."""
    plan_rng, bg_rng, obj_rng = image_rngs(seed, split, index)
    plan = [
        (float(plan_rng.uniform(*SCALE_RANGES[kind])), name, kind == "difficult")
        for name, kind in _plan_instances(plan_rng)
    ]
    size = sample_image_size(plan_rng)
    short = min(size)
    img = _background(bg_rng, size)
    _clutter(img, bg_rng, short)
    small_luma = np.asarray(img.convert("L").reduce(8), dtype=np.float32)
    objects: list[SyntheticObject] = []
    placed: list[Box] = []
    for scale, name, difficult in sorted(plan, key=lambda t: -t[0]):  # large first, small on top
        obj = _add_object(img, small_luma, name, difficult, scale, placed, obj_rng)
        if obj is not None:
            objects.append(obj)
    draw = ImageDraw.Draw(img)
    for _ in range(int(bg_rng.integers(*OCCLUDERS_RANGE))):
        _distractor(draw, bg_rng, size[0], size[1], short, OCCLUDER_SIZE_RANGE)
    return _add_noise(img, bg_rng), objects


# --- files ---------------------------------------------------------------------------------


def image_id(year: str, split: str, index: int) -> str:
    """The VOC id of image ``index`` of ``split``: ``2012_000001`` or ``000001`` style."""
    number = ID_STRIDE * index + SPLIT_CODES[split]
    if number > MAX_IMAGE_NUMBER:
        raise ValueError(f"Too many synthetic images: id number {number} exceeds {MAX_IMAGE_NUMBER}.")
    return f"{year}_{number:06d}" if year == "2012" else f"{number:06d}"


def annotation_xml(year: str, image_name: str, size: tuple[int, int], objects: Iterable[SyntheticObject]) -> str:
    """The VOC ``Annotations/<id>.xml`` text, tab-indented like the real files."""
    database, annotation = XML_SOURCE[year]
    lines = [
        "<annotation>",
        f"\t<folder>VOC{year}</folder>",
        f"\t<filename>{image_name}</filename>",
        "\t<source>",
        f"\t\t<database>{database}</database>",
        f"\t\t<annotation>{annotation}</annotation>",
        "\t\t<image>synthetic</image>",
        "\t</source>",
        *(XML_OWNER if year == "2007" else ()),
        "\t<size>",
        f"\t\t<width>{size[0]}</width>",
        f"\t\t<height>{size[1]}</height>",
        "\t\t<depth>3</depth>",
        "\t</size>",
        "\t<segmented>0</segmented>",
    ]
    for obj in objects:
        lines += [
            "\t<object>",
            f"\t\t<name>{obj.name}</name>",
            f"\t\t<pose>{obj.pose}</pose>",
            f"\t\t<truncated>{int(obj.truncated)}</truncated>",
            f"\t\t<difficult>{int(obj.difficult)}</difficult>",
            *_bndbox_lines(obj.box, "\t\t"),
        ]
        for part, box in obj.parts:
            lines += ["\t\t<part>", f"\t\t\t<name>{part}</name>", *_bndbox_lines(box, "\t\t\t"), "\t\t</part>"]
        lines.append("\t</object>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _bndbox_lines(box: Box, indent: str) -> list[str]:
    """The ``<bndbox>`` element of a box, one tag a line."""
    xmin, ymin, xmax, ymax = box
    return [
        f"{indent}<bndbox>",
        f"{indent}\t<xmin>{xmin}</xmin>",
        f"{indent}\t<ymin>{ymin}</ymin>",
        f"{indent}\t<xmax>{xmax}</xmax>",
        f"{indent}\t<ymax>{ymax}</ymax>",
        f"{indent}</bndbox>",
    ]


def image_labels(objects: Iterable[SyntheticObject]) -> tuple[int, ...]:
    """Per-class ImageSets values: 1 non-difficult object, 0 only difficult ones, -1 none."""
    labels = dict.fromkeys(VOC_CLASSES, -1)
    for obj in objects:
        labels[obj.name] = max(labels[obj.name], 0 if obj.difficult else 1)
    return tuple(labels[c] for c in VOC_CLASSES)


def _write_atomic(path: Path, data: bytes) -> None:
    """Writes via a temporary file and a rename, so a file is either complete or absent."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _encode_jpeg(img: Image.Image) -> bytes:
    """JPEG bytes at a fixed quality (deterministic for the same pixels)."""
    buf = BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _generate_image(task: tuple[str, str, str, int, int]) -> tuple[int, ...]:
    """Renders and writes one image and its XML; returns its per-class labels."""
    voc_dir, year, split, index, seed = task
    img, objects = render_synthetic_image(seed, split, index)
    image_name = image_id(year, split, index)
    root = Path(voc_dir)
    _write_atomic(root / "JPEGImages" / f"{image_name}.jpg", _encode_jpeg(img))
    xml = annotation_xml(year, f"{image_name}.jpg", img.size, objects)
    _write_atomic(root / "Annotations" / f"{image_name}.xml", xml.encode("utf-8"))
    return image_labels(objects)


def _write_imagesets(main: Path, year: str, labels: dict[str, dict[str, tuple[int, ...]]]) -> None:
    """Writes ``<split>.txt`` and ``<class>_<split>.txt`` for every split in ``labels``."""
    eol = LIST_EOL[year]
    for split, by_id in sorted(labels.items()):
        ids = sorted(by_id)
        _write_atomic(main / f"{split}.txt", "".join(f"{i}{eol}" for i in ids).encode("ascii"))
        for c, cls in enumerate(VOC_CLASSES):
            text = "".join(f"{i} {by_id[i][c]:2d}{eol}" for i in ids)
            _write_atomic(main / f"{cls}_{split}.txt", text.encode("ascii"))


def _remove_lists(main: Path, split: str) -> None:
    """Removes a split's lists left over from an earlier generation with other arguments."""
    for name in [f"{split}.txt", *(f"{cls}_{split}.txt" for cls in VOC_CLASSES)]:
        (main / name).unlink(missing_ok=True)


def _marker_args(n_train: int, n_val: int, n_test: int, year: str, seed: int) -> dict[str, int | str]:
    """What the marker records about one tree."""
    return {"n_train": n_train, "n_val": n_val, "n_test": n_test, "year": year, "seed": seed}


def _read_marker(root: Path) -> dict:
    """The marker's content, or an empty marker when absent, unreadable or from another version."""
    try:
        data = json.loads((root / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != SYNTHETIC_GENERATOR_VERSION:
        return {}
    return data


def _write_marker(root: Path, trees: dict) -> None:
    """Writes (or removes, when no tree is complete) ``root/synthetic.json``."""
    if not trees:
        (root / MARKER_NAME).unlink(missing_ok=True)
        return
    data = {"generator": "voc.synthetic", "version": SYNTHETIC_GENERATOR_VERSION, "trees": trees}
    _write_atomic(root / MARKER_NAME, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _check_args(n_train: int, n_val: int, n_test: int, year: str, seed: int, workers: int) -> None:
    """Raises ValueError naming a bad argument and the valid values."""
    if year not in YEARS:
        raise ValueError(f"Unknown VOC year {year!r}. Valid years are {YEARS}.")
    if n_train < 1 or n_val < 1 or n_test < 0:
        raise ValueError(f"Need n_train >= 1, n_val >= 1, n_test >= 0; got {n_train}, {n_val}, {n_test}.")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")


def generate_synthetic_voc(
    root: str | Path,
    n_train: int,
    n_val: int,
    n_test: int = 0,
    *,
    year: str = "2012",
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """Writes a synthetic ``root/VOCdevkit/VOC<year>`` tree and returns its path.

    Splits ``train`` and ``val`` (and ``trainval``), plus ``test`` when ``n_test > 0``. The
    output depends only on (n_train, n_val, n_test, year, seed), not on ``workers``.
    ``root/synthetic.json`` is written last; see :func:`is_complete_synthetic_voc`.
    """
    year = str(year)
    _check_args(n_train, n_val, n_test, year, seed, workers)
    root = Path(root)
    voc_dir = root / "VOCdevkit" / f"VOC{year}"
    main = voc_dir / "ImageSets" / "Main"
    for sub in (voc_dir / "JPEGImages", voc_dir / "Annotations", main):
        sub.mkdir(parents=True, exist_ok=True)
    trees = _read_marker(root).get("trees", {})
    trees.pop(year, None)
    _write_marker(root, trees)

    counts = {"train": n_train, "val": n_val, "test": n_test}
    tasks = [(str(voc_dir), year, split, i, seed) for split in ("train", "val", "test") for i in range(counts[split])]
    start = time.perf_counter()
    if workers == 1:
        results = [_generate_image(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_generate_image, tasks, chunksize=max(1, len(tasks) // (8 * workers))))
    elapsed = time.perf_counter() - start
    logger.info("Generated %d synthetic images in %.1f s (%.1f ms/image, %d workers) under %s",
                len(tasks), elapsed, 1000 * elapsed / max(1, len(tasks)), workers, voc_dir)

    labels: dict[str, dict[str, tuple[int, ...]]] = {s: {} for s in ("train", "val", "test") if counts[s] > 0}
    for (_, _, split, index, _), lab in zip(tasks, results):
        labels[split][image_id(year, split, index)] = lab
    labels["trainval"] = {**labels["train"], **labels["val"]}
    if n_test == 0:
        _remove_lists(main, "test")
    _write_imagesets(main, year, labels)

    trees = _read_marker(root).get("trees", {})
    trees[year] = _marker_args(n_train, n_val, n_test, year, seed)
    _write_marker(root, trees)
    return voc_dir


def is_complete_synthetic_voc(
    root: str | Path, n_train: int, n_val: int, n_test: int = 0, year: str = "2012", seed: int = 0
) -> bool:
    """Whether ``root`` holds a finished tree generated by this version with these arguments."""
    root = Path(root)
    year = str(year)
    tree = _read_marker(root).get("trees", {}).get(year)
    if tree != _marker_args(n_train, n_val, n_test, year, seed):
        return False
    return (root / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main" / "trainval.txt").is_file()
