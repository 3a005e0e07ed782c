"""One synthetic image: its planned objects (``voc.synthetic.stats``) drawn as class glyphs
(``voc.synthetic.shapes``), flipped, rotated, placed and painted (``voc.synthetic.paint``) over a
cluttered background (``voc.synthetic.background``), with their VOC boxes and flags."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from voc.synthetic.background import add_noise, background, clutter, distractor
from voc.synthetic.paint import fill_image, object_color
from voc.synthetic.shapes import Keypoints, draw_glyph, glyph_size
from voc.synthetic.stats import plan_instances, sample_image_size

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

# Integer ranges (low, high) below are half-open, as numpy's ``Generator.integers``.
OCCLUDERS_RANGE = (0, 3)
OCCLUDER_SIZE_RANGE = (0.03, 0.1)

SPLIT_CODES: dict[str, int] = {"train": 1, "val": 2, "test": 3}
"""Each split's code, part of every image's seed (:func:`image_rngs`) and of its id: the image
number of split index i is ``voc.synthetic.writer.ID_STRIDE * i + code``, so ids interleave, as
VOC's do."""


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
    for _attempt in range(12):
        layer = _make_layer(name, scale * short, rng)
        spot = _place(layer, size, placed, truncate, rng)
        if spot is not None and _is_difficult(spot[1], short) == want_difficult:
            break
        scale *= 0.8 if want_difficult else 1.2
        truncate = False
    else:
        return None
    (ox, oy), box = spot
    color = object_color(name, _region_luma(small_luma, box, size[0] / small_luma.shape[1]), rng)
    img.paste(fill_image(name, color, layer.mask.size, short, rng), (ox, oy), layer.mask)
    placed.append(box)
    bx0, by0, bx1, by1 = layer.bbox
    truncated = ox + bx0 < 0 or oy + by0 < 0 or ox + bx1 > size[0] or oy + by1 > size[1]
    parts = _part_boxes(layer, (ox, oy), size) if name == "person" and rng.random() < PART_PROB else ()
    return SyntheticObject(name, box, truncated, want_difficult, layer.pose, parts)


def image_rngs(seed: int, split: str, index: int) -> list[np.random.Generator]:
    """Independent generators (plan, background, objects) of one image, from (seed, split, index) only."""
    children = np.random.SeedSequence([seed, SPLIT_CODES[split], index]).spawn(3)
    return [np.random.default_rng(s) for s in children]


def render_synthetic_image(seed: int, split: str, index: int) -> tuple[Image.Image, list[SyntheticObject]]:
    """The RGB image and annotated objects of image ``index`` of ``split``."""
    plan_rng, bg_rng, obj_rng = image_rngs(seed, split, index)
    plan = [
        (float(plan_rng.uniform(*SCALE_RANGES[kind])), name, kind == "difficult")
        for name, kind in plan_instances(plan_rng)
    ]
    size = sample_image_size(plan_rng)
    short = min(size)
    img = background(bg_rng, size)
    clutter(img, bg_rng, short)
    small_luma = np.asarray(img.convert("L").reduce(8), dtype=np.float32)
    objects: list[SyntheticObject] = []
    placed: list[Box] = []
    for scale, name, difficult in sorted(plan, key=lambda t: -t[0]):  # large first, small on top
        obj = _add_object(img, small_luma, name, difficult, scale, placed, obj_rng)
        if obj is not None:
            objects.append(obj)
    draw = ImageDraw.Draw(img)
    for _ in range(int(bg_rng.integers(*OCCLUDERS_RANGE))):
        distractor(draw, bg_rng, size[0], size[1], short, OCCLUDER_SIZE_RANGE)
    return add_noise(img, bg_rng), objects
