"""The scene around the objects: a smooth multi-colour background with texture, clutter (lines,
hatched patches, distractor shapes that are none of the classes), and per-pixel noise."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from voc.synthetic.paint import random_color
from voc.synthetic.shapes import DISTRACTOR_KINDS, draw_distractor

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
NOISE_AMPLITUDE = 10


def background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A smooth multi-colour gradient plus blotchy mid-frequency texture."""
    w, h = size
    gx, gy = (int(v) for v in rng.integers(*BACKGROUND_GRID_RANGE, size=2))
    bases = np.array([random_color(rng) for _ in range(3)], dtype=np.float32)
    mix = rng.dirichlet(np.ones(3) * 0.7, size=(gy, gx)).astype(np.float32)
    grid = np.clip(mix @ bases + rng.normal(0, 20, (gy, gx, 3)), 0, 255).astype(np.uint8)
    base = np.asarray(Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    cell = int(rng.integers(*TEXTURE_CELL_RANGE))
    tex_small = rng.integers(-TEXTURE_AMPLITUDE, TEXTURE_AMPLITUDE + 1, (h // cell + 2, w // cell + 2), dtype=np.int16)
    tex_img = Image.fromarray((tex_small + 128).astype(np.uint8)).resize(
        ((w // cell + 2) * cell, (h // cell + 2) * cell), Image.Resampling.BILINEAR)
    tex = np.asarray(tex_img, dtype=np.int16)[:h, :w, None] - 128
    return Image.fromarray(np.clip(base + tex, 0, 255).astype(np.uint8))


def clutter(img: Image.Image, rng: np.random.Generator, short: int) -> None:
    """Random lines, a hatched patch and distractor shapes (none of them a class)."""
    w, h = img.size
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(*CLUTTER_LINES_RANGE))):
        x0, x1 = rng.uniform(-0.1, 1.1, 2) * w
        y0, y1 = rng.uniform(-0.1, 1.1, 2) * h
        draw.line((x0, y0, x1, y1), fill=random_color(rng), width=int(rng.integers(*CLUTTER_LINE_WIDTH_RANGE)))
    if rng.random() < HATCH_PATCH_PROB:
        _hatch(draw, rng, w, h, short)
    for _ in range(int(rng.integers(*CLUTTER_SHAPES_RANGE))):
        distractor(draw, rng, w, h, short, CLUTTER_SIZE_RANGE)


def _hatch(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, short: int) -> None:
    """A patch of parallel lines (a fence/stripe texture)."""
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    half = rng.uniform(0.1, 0.3) * short
    ang = rng.uniform(0, math.pi)
    dx, dy = math.cos(ang), math.sin(ang)
    gap = rng.uniform(4, 12)
    color, width = random_color(rng), int(rng.integers(1, 4))
    for k in range(int(2 * half / gap)):
        off = -half + k * gap
        px, py = cx - dy * off, cy + dx * off
        draw.line((px - dx * half, py - dy * half, px + dx * half, py + dy * half), fill=color, width=width)


def distractor(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, short: int, size_range: tuple[float, float]
) -> None:
    """One random distractor shape anywhere in the image."""
    kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
    center = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
    draw_distractor(draw, kind, center, float(rng.uniform(*size_range)) * short, random_color(rng), rng)


def add_noise(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Per-pixel luma noise over the whole image."""
    w, h = img.size
    noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, (h, w, 1), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8))
