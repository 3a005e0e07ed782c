"""Glyphs for the synthetic VOC generator: one recognisable silhouette per VOC class.

Each glyph is drawn as a binary ``"L"`` mask (255 = object, 0 = background) in a box of
``(width, height)`` pixels whose aspect ratio is :data:`GLYPH_ASPECT` of the class. Glyph
coordinates are written in unit coordinates: ``x`` in ``[0, 1]`` across the width and ``y``
in ``[0, 1]`` down the height. Lengths given "in h" are fractions of the box height.

Distractor shapes (:func:`draw_distractor`) are clutter that is deliberately none of the
classes: blobs, discs, polygons, triangles, squiggles and bars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]
Keypoints = dict[str, list[tuple[float, float, float]]]
"""Part name -> list of (x, y, radius) in mask pixels (only persons have parts)."""

GLYPH_ASPECT: dict[str, float] = {
    "aeroplane": 1.0,
    "bicycle": 1.7,
    "bird": 1.3,
    "boat": 1.2,
    "bottle": 0.36,
    "bus": 2.1,
    "car": 1.9,
    "cat": 0.85,
    "chair": 0.7,
    "cow": 1.6,
    "diningtable": 1.6,
    "dog": 1.5,
    "horse": 1.15,
    "motorbike": 1.6,
    "person": 0.45,
    "pottedplant": 0.8,
    "sheep": 1.4,
    "sofa": 2.2,
    "train": 3.0,
    "tvmonitor": 1.3,
}
"""Width / height of each class's glyph box before rotation."""

GLYPH_JITTER = 0.04
"""Random offset (unit coordinates) applied to the free parameters of a glyph's proportions."""

ON, OFF = 255, 0


class _Pen:
    """Draws in unit coordinates onto a mask of ``w x h`` pixels."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.mask = Image.new("L", (w, h), OFF)
        self.draw = ImageDraw.Draw(self.mask)

    def xy(self, x: float, y: float) -> tuple[float, float]:
        """Unit coordinates -> pixel coordinates."""
        return x * (self.w - 1), y * (self.h - 1)

    def px(self, length_in_h: float) -> float:
        """A length given as a fraction of the height, in pixels."""
        return length_in_h * self.h

    def width(self, length_in_h: float) -> int:
        """A stroke width (fraction of the height) in whole pixels, at least 1."""
        return max(1, round(length_in_h * self.h))

    def poly(self, points: Sequence[Point], fill: int = ON) -> None:
        """A filled polygon."""
        self.draw.polygon([self.xy(x, y) for x, y in points], fill=fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: int = ON, radius: float = 0.0) -> None:
        """A filled rectangle, optionally with rounded corners (radius in h)."""
        a, b = self.xy(x0, y0), self.xy(x1, y1)
        box = (min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
        r = round(self.px(radius))
        if r > 0:
            self.draw.rounded_rectangle(box, radius=r, fill=fill)
        else:
            self.draw.rectangle(box, fill=fill)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: int = ON) -> None:
        """A filled ellipse with radii in unit x and unit y."""
        x0, y0 = self.xy(cx - rx, cy - ry)
        x1, y1 = self.xy(cx + rx, cy + ry)
        self.draw.ellipse((x0, y0, max(x0, x1), max(y0, y1)), fill=fill)

    def circle(self, cx: float, cy: float, r: float, fill: int = ON) -> None:
        """A filled circle of radius ``r`` (in h)."""
        x, y = self.xy(cx, cy)
        rp = max(1.0, self.px(r))
        self.draw.ellipse((x - rp, y - rp, x + rp, y + rp), fill=fill)

    def ring(self, cx: float, cy: float, r: float, width: float) -> None:
        """A circle outline of radius ``r`` and stroke ``width`` (both in h)."""
        x, y = self.xy(cx, cy)
        rp = max(1.0, self.px(r))
        self.draw.ellipse((x - rp, y - rp, x + rp, y + rp), outline=ON, width=self.width(width))

    def line(self, points: Sequence[Point], width: float, fill: int = ON) -> None:
        """A thick polyline (width in h) with round joints."""
        pts = [self.xy(x, y) for x, y in points]
        wpx = self.width(width)
        self.draw.line(pts, fill=fill, width=wpx, joint="curve")
        if wpx >= 3:
            r = wpx / 2
            for x, y in (pts[0], pts[-1]):
                self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _j(rng: np.random.Generator, scale: float = 1.0) -> float:
    """A small random offset for glyph proportions."""
    return float(rng.uniform(-GLYPH_JITTER, GLYPH_JITTER)) * scale


def _aeroplane(p: _Pen, rng: np.random.Generator) -> None:
    """Top view: long fuselage, swept wings, tailplane — a cross-like silhouette."""
    sweep = 0.1 + _j(rng, 2)
    p.ellipse(0.5, 0.5, 0.075, 0.49)
    p.poly([(0.44, 0.32), (0.56, 0.32), (1.0, 0.46 + sweep), (1.0, 0.56 + sweep),
            (0.56, 0.5), (0.44, 0.5), (0.0, 0.56 + sweep), (0.0, 0.46 + sweep)])
    p.poly([(0.46, 0.8), (0.54, 0.8), (0.76, 0.93), (0.76, 1.0), (0.24, 1.0), (0.24, 0.93)])


def _bicycle(p: _Pen, rng: np.random.Generator) -> None:
    """Two thin wheels joined by a triangular frame, seat and handlebar."""
    r, ring_w, bar_w = 0.3 + _j(rng), 0.075, 0.075
    rx = r * p.h / p.w
    left, right, cy = rx + 0.01, 1 - rx - 0.01, 1 - r - 0.02
    p.ring(left, cy, r, ring_w)
    p.ring(right, cy, r, ring_w)
    crank, seat_top, head = (0.46, cy), (0.36, 0.22), (0.68, 0.3)
    p.line([(left, cy), crank, head, (0.38, 0.3), (left, cy)], bar_w)
    p.line([crank, seat_top], bar_w)
    p.line([head, (right, cy)], bar_w)
    p.line([head, (0.66, 0.1), (0.76, 0.07)], bar_w)
    p.line([(0.29, 0.2), (0.42, 0.2)], 0.09)


def _bird(p: _Pen, rng: np.random.Generator) -> None:
    """Side view: oval body, round head, pointed beak, raised wing, fan tail, thin legs."""
    p.ellipse(0.45, 0.58, 0.28, 0.18)
    p.circle(0.76, 0.38, 0.14)
    p.poly([(0.84, 0.32), (1.0, 0.4 + _j(rng)), (0.84, 0.46)])
    p.poly([(0.28, 0.55), (0.58, 0.52), (0.22 + _j(rng, 2), 0.02)])
    p.poly([(0.22, 0.55), (0.0, 0.42), (0.0, 0.68)])
    p.line([(0.42, 0.72), (0.38, 1.0)], 0.04)
    p.line([(0.52, 0.72), (0.55, 1.0)], 0.04)


def _boat(p: _Pen, rng: np.random.Generator) -> None:
    """Sailing boat: trapezoid hull, mast, mainsail and jib."""
    p.poly([(0.0, 0.7), (1.0, 0.7), (0.8, 0.98), (0.2, 0.98)])
    p.line([(0.5, 0.03), (0.5, 0.72)], 0.05)
    p.poly([(0.54, 0.06), (0.54, 0.64), (0.92 + _j(rng), 0.64)])
    p.poly([(0.46, 0.14), (0.46, 0.64), (0.14 + _j(rng), 0.64)])


def _bottle(p: _Pen, rng: np.random.Generator) -> None:
    """Narrow bottle: rounded body, tapered shoulder, neck and cap."""
    shoulder = 0.4 + _j(rng)
    p.rect(0.04, shoulder, 0.96, 1.0, radius=0.04)
    p.poly([(0.04, shoulder + 0.03), (0.96, shoulder + 0.03), (0.67, 0.22), (0.33, 0.22)])
    p.rect(0.33, 0.06, 0.67, 0.25)
    p.rect(0.27, 0.0, 0.73, 0.08)


def _bus(p: _Pen, rng: np.random.Generator) -> None:
    """Long boxy body with a row of windows, a door and two wheels."""
    p.rect(0.0, 0.04, 1.0, 0.82, radius=0.1)
    n = 5
    for i in range(n):
        x0 = 0.2 + i * 0.16
        p.rect(x0, 0.14, x0 + 0.12, 0.42, fill=OFF)
    p.rect(0.05, 0.14, 0.14, 0.74, fill=OFF)
    for cx in (0.22 + _j(rng), 0.8):
        p.circle(cx, 0.82, 0.16)
        p.circle(cx, 0.82, 0.06, fill=OFF)


def _car(p: _Pen, rng: np.random.Generator) -> None:
    """Low body, trapezoid cabin with two windows, two large wheels."""
    cab = _j(rng)
    p.rect(0.0, 0.42, 1.0, 0.8, radius=0.1)
    p.poly([(0.18, 0.44), (0.3 + cab, 0.06), (0.68 + cab, 0.06), (0.84, 0.44)])
    p.poly([(0.26, 0.4), (0.34 + cab, 0.14), (0.48, 0.14), (0.48, 0.4)], fill=OFF)
    p.poly([(0.53, 0.4), (0.53, 0.14), (0.65 + cab, 0.14), (0.75, 0.4)], fill=OFF)
    for cx in (0.22, 0.78):
        p.circle(cx, 0.8, 0.19)
        p.circle(cx, 0.8, 0.07, fill=OFF)


def _cat(p: _Pen, rng: np.random.Generator) -> None:
    """Sitting cat seen from the front: pointed ears, eyes, round body, curled tail."""
    ear = 0.04 + _j(rng)
    p.ellipse(0.45, 0.72, 0.34, 0.27)
    p.circle(0.45, 0.33, 0.2)
    p.poly([(0.2, 0.28), (0.18 - ear, 0.0), (0.4, 0.16)])
    p.poly([(0.7, 0.28), (0.72 + ear, 0.0), (0.5, 0.16)])
    p.ellipse(0.37, 0.31, 0.045, 0.04, fill=OFF)
    p.ellipse(0.53, 0.31, 0.045, 0.04, fill=OFF)
    p.line([(0.74, 0.92), (0.95, 0.78), (0.9, 0.52)], 0.06)


def _chair(p: _Pen, rng: np.random.Generator) -> None:
    """Side view: tall backrest with a gap, seat, two legs (an 'h' shape)."""
    seat = 0.52 + _j(rng)
    p.rect(0.04, 0.0, 0.22, seat + 0.02)
    p.rect(0.09, 0.12, 0.17, seat - 0.1, fill=OFF)
    p.rect(0.04, seat, 0.96, seat + 0.12)
    p.rect(0.04, seat + 0.1, 0.16, 1.0)
    p.rect(0.84, seat + 0.1, 0.96, 1.0)


def _cow(p: _Pen, rng: np.random.Generator) -> None:
    """Boxy body with spots, four straight legs, square head with horns, tail."""
    p.rect(0.12, 0.22, 0.8, 0.64, radius=0.06)
    for x0 in (0.14, 0.26, 0.62, 0.72):
        p.rect(x0, 0.6, x0 + 0.08, 1.0)
    p.rect(0.78, 0.14, 1.0, 0.46, radius=0.05)
    p.poly([(0.8, 0.16), (0.81, 0.0), (0.87, 0.16)])
    p.poly([(0.91, 0.16), (0.97, 0.0), (0.98, 0.16)])
    for cx, cy in ((0.3, 0.36), (0.52, 0.5), (0.62, 0.32)):
        p.ellipse(cx + _j(rng), cy + _j(rng), 0.055, 0.08, fill=OFF)
    p.line([(0.12, 0.26), (0.04, 0.6)], 0.04)


def _diningtable(p: _Pen, rng: np.random.Generator) -> None:
    """Table top seen in perspective, a thick edge and two legs (a wide 'Π')."""
    p.poly([(0.14 + _j(rng), 0.0), (0.86, 0.0), (1.0, 0.24), (0.0, 0.24)])
    p.rect(0.0, 0.22, 1.0, 0.38)
    p.rect(0.05, 0.36, 0.15, 1.0)
    p.rect(0.85, 0.36, 0.95, 1.0)


def _dog(p: _Pen, rng: np.random.Generator) -> None:
    """Side view: long body, four legs, long snout, raised tail."""
    tail = _j(rng, 2)
    p.ellipse(0.45, 0.45, 0.3, 0.17)
    for (x0, x1) in ((0.24, 0.2), (0.34, 0.36), (0.56, 0.54), (0.66, 0.7)):
        p.line([(x0, 0.5), (x1, 0.96)], 0.08)
    p.line([(0.68, 0.4), (0.8, 0.24)], 0.14)
    p.ellipse(0.82, 0.22, 0.1, 0.13)
    p.rect(0.84, 0.2, 1.0, 0.34, radius=0.05)
    p.ellipse(0.76, 0.3, 0.035, 0.13)
    p.line([(0.17, 0.4), (0.06 + tail, 0.06)], 0.06)


def _horse(p: _Pen, rng: np.random.Generator) -> None:
    """Side view: high body on long thin legs, long raised neck and head, hanging tail."""
    neck = _j(rng)
    p.ellipse(0.45, 0.42, 0.3, 0.14)
    for (x0, x1) in ((0.22, 0.18), (0.32, 0.34), (0.58, 0.55), (0.66, 0.72)):
        p.line([(x0, 0.48), (x1, 0.99)], 0.055)
    p.poly([(0.62, 0.34), (0.76, 0.46), (0.9 + neck, 0.12), (0.78 + neck, 0.06)])
    p.poly([(0.78 + neck, 0.06), (0.88 + neck, 0.0), (1.0, 0.2), (0.93, 0.27)])
    p.poly([(0.17, 0.34), (0.12, 0.36), (0.03, 0.72), (0.1, 0.72)])


def _motorbike(p: _Pen, rng: np.random.Generator) -> None:
    """Two thick tyres close together, a solid engine/tank body, seat and handlebar."""
    r = 0.27 + _j(rng)
    rx = r * p.h / p.w
    left, right, cy = rx + 0.01, 1 - rx - 0.01, 1 - r - 0.01
    for cx in (left, right):
        p.circle(cx, cy, r)
        p.circle(cx, cy, r * 0.45, fill=OFF)
    p.poly([(0.3, 0.66), (0.66, 0.66), (0.74, 0.36), (0.52, 0.28), (0.32, 0.36)])
    p.rect(0.18, 0.26, 0.54, 0.36, radius=0.04)
    p.line([(right, cy), (0.76, 0.14), (0.88, 0.1)], 0.07)


def _person(p: _Pen, rng: np.random.Generator) -> Keypoints:
    """Stick figure with thick limbs; returns the head, hand and foot positions."""
    head = (0.5, 0.1)
    neck, hip = (0.5, 0.2), (0.5, 0.56)
    hands = [(0.12 + _j(rng, 2), 0.5 + _j(rng, 5)), (0.88 + _j(rng, 2), 0.5 + _j(rng, 5))]
    elbows = [(0.24, 0.36 + _j(rng, 2)), (0.76, 0.36 + _j(rng, 2))]
    feet = [(0.2 + _j(rng, 2), 0.97), (0.8 + _j(rng, 2), 0.97)]
    knees = [(0.34, 0.77), (0.66, 0.77)]
    p.circle(*head, 0.1)
    p.line([neck, hip], 0.12)
    for elbow, hand in zip(elbows, hands, strict=False):
        p.line([(0.5, 0.25), elbow, hand], 0.08)
    for knee, foot in zip(knees, feet, strict=False):
        p.line([hip, knee, foot], 0.09)
    to_px = p.xy
    r_hand, r_foot = p.px(0.04), p.px(0.035)
    return {
        "head": [(*to_px(*head), p.px(0.1))],
        "hand": [(*to_px(*h), r_hand) for h in hands],
        "foot": [(*to_px(*f), r_foot) for f in feet],
    }


def _pottedplant(p: _Pen, rng: np.random.Generator) -> None:
    """Tapered pot with a rim and a fan of pointed leaves."""
    p.poly([(0.26, 0.62), (0.74, 0.62), (0.66, 1.0), (0.34, 1.0)])
    p.rect(0.2, 0.58, 0.8, 0.67)
    base = (0.5, 0.6)
    n = 5
    for i in range(n):
        ang = math.radians(-155 + i * 130 / (n - 1) + _j(rng, 100))
        length, half = 0.5 + _j(rng, 3), 0.075
        tip = (base[0] + length * math.cos(ang) * p.h / p.w, base[1] + length * math.sin(ang))
        mid = (base[0] + 0.5 * length * math.cos(ang) * p.h / p.w, base[1] + 0.5 * length * math.sin(ang))
        nx, ny = -math.sin(ang) * half * p.h / p.w, math.cos(ang) * half
        p.poly([base, (mid[0] + nx, mid[1] + ny), tip, (mid[0] - nx, mid[1] - ny)])


def _sheep(p: _Pen, rng: np.random.Generator) -> None:
    """Fluffy body made of overlapping puffs, small head, short thin legs."""
    cx, cy, ax, ay = 0.45, 0.42, 0.3, 0.17
    p.ellipse(cx, cy, ax, ay)
    n = 9
    for i in range(n):
        ang = 2 * math.pi * i / n + _j(rng, 3)
        p.circle(cx + ax * math.cos(ang), cy + ay * math.sin(ang), 0.12)
    for x in (0.28, 0.38, 0.54, 0.64):
        p.line([(x, 0.58), (x + _j(rng), 0.98)], 0.045)
    p.ellipse(0.9, 0.36, 0.075, 0.13)


def _sofa(p: _Pen, rng: np.random.Generator) -> None:
    """Backrest, seat base, two armrests, short legs and cushion seams."""
    arm = 0.3 + _j(rng)
    p.rect(0.06, 0.04, 0.94, 0.55, radius=0.1)
    p.rect(0.0, 0.5, 1.0, 0.86, radius=0.06)
    p.rect(0.0, arm, 0.12, 0.86, radius=0.08)
    p.rect(0.88, arm, 1.0, 0.86, radius=0.08)
    p.line([(0.13, 0.5), (0.87, 0.5)], 0.035, fill=OFF)
    for x in (0.37, 0.63):
        p.line([(x, 0.52), (x, 0.84)], 0.03, fill=OFF)
    p.rect(0.04, 0.84, 0.1, 1.0)
    p.rect(0.9, 0.84, 0.96, 1.0)


def _train(p: _Pen, rng: np.random.Generator) -> None:
    """Steam locomotive with chimney and cab, two wagons, many wheels, rail."""
    p.rect(0.02, 0.3, 0.3, 0.76, radius=0.06)
    p.rect(0.21, 0.04, 0.36, 0.76)
    p.rect(0.25, 0.12, 0.32, 0.34, fill=OFF)
    p.rect(0.06, 0.06 + _j(rng), 0.12, 0.32)
    for x0 in (0.4, 0.71):
        p.rect(x0, 0.2, x0 + 0.28, 0.76)
        for k in range(3):
            wx = x0 + 0.025 + k * 0.088
            p.rect(wx, 0.3, wx + 0.055, 0.5, fill=OFF)
    p.line([(0.34, 0.64), (0.73, 0.64)], 0.05)
    for cx in (0.07, 0.17, 0.28, 0.46, 0.62, 0.77, 0.93):
        p.circle(cx, 0.84, 0.12)
    p.line([(0.0, 0.97), (1.0, 0.97)], 0.05)


def _tvmonitor(p: _Pen, rng: np.random.Generator) -> None:
    """Thick rectangular frame around an empty screen, on a small stand."""
    frame = 0.1 + _j(rng, 0.5)
    p.rect(0.0, 0.0, 1.0, 0.82, radius=0.04)
    p.rect(frame * 0.8, frame, 1 - frame * 0.8, 0.82 - frame, fill=OFF)
    p.rect(0.44, 0.8, 0.56, 0.92)
    p.rect(0.28, 0.9, 0.72, 1.0)


GLYPHS: dict[str, Callable[[_Pen, np.random.Generator], Keypoints | None]] = {
    "aeroplane": _aeroplane,
    "bicycle": _bicycle,
    "bird": _bird,
    "boat": _boat,
    "bottle": _bottle,
    "bus": _bus,
    "car": _car,
    "cat": _cat,
    "chair": _chair,
    "cow": _cow,
    "diningtable": _diningtable,
    "dog": _dog,
    "horse": _horse,
    "motorbike": _motorbike,
    "person": _person,
    "pottedplant": _pottedplant,
    "sheep": _sheep,
    "sofa": _sofa,
    "train": _train,
    "tvmonitor": _tvmonitor,
}
"""Class name -> function drawing its glyph on a pen (in VOC_CLASSES order)."""

def glyph_size(name: str, long_side: float) -> tuple[int, int]:
    """Pixel (width, height) of a class glyph whose longer side is ``long_side`` pixels."""
    aspect = GLYPH_ASPECT[name]
    if aspect >= 1:
        w, h = long_side, long_side / aspect
    else:
        w, h = long_side * aspect, long_side
    return max(3, round(w)), max(3, round(h))


def draw_glyph(name: str, size: tuple[int, int], rng: np.random.Generator) -> tuple[Image.Image, Keypoints]:
    """The class glyph as an ``"L"`` mask of ``size`` pixels, and its part keypoints (maybe empty)."""
    pen = _Pen(*size)
    keypoints = GLYPHS[name](pen, rng) or {}
    return pen.mask, keypoints


DISTRACTOR_KINDS: tuple[str, ...] = ("blob", "polygon", "squiggle", "bar", "triangle", "disc")


def draw_distractor(
    draw: ImageDraw.ImageDraw,
    kind: str,
    center: Point,
    size: float,
    color: tuple[int, int, int],
    rng: np.random.Generator,
) -> None:
    """Draws one clutter shape of ``kind`` (none of the VOC classes) in image pixels."""
    cx, cy = center
    r = size / 2
    if kind == "blob":
        rx, ry = r * rng.uniform(0.5, 1.0), r * rng.uniform(0.3, 1.0)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=color)
    elif kind == "disc":
        draw.ellipse((cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.6), fill=color)
    elif kind in ("polygon", "triangle"):
        n = 3 if kind == "triangle" else int(rng.integers(5, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = rng.uniform(0.5, 1.0, n) * r
        pts = [(cx + rad * math.cos(a), cy + rad * math.sin(a)) for a, rad in zip(angles, radii, strict=False)]
        draw.polygon(pts, fill=color)
    elif kind == "squiggle":
        n = int(rng.integers(3, 7))
        pts = [(cx + float(rng.uniform(-r, r)), cy + float(rng.uniform(-r, r))) for _ in range(n)]
        draw.line(pts, fill=color, width=max(1, int(rng.uniform(0.04, 0.12) * size)), joint="curve")
    elif kind == "bar":
        ang = rng.uniform(0, math.pi)
        dx, dy = r * math.cos(ang), r * math.sin(ang)
        draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=color, width=max(1, int(rng.uniform(0.08, 0.25) * size)))
    else:
        raise ValueError(f"Unknown distractor kind {kind!r}. Valid kinds are {DISTRACTOR_KINDS}.")
