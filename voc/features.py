"""Frozen-backbone features of a split: one float32 vector per image, the mean over its crops.

Takes any ``encode`` mapping crops ``[B·K, 3, H, W]`` to features ``[B·K, D]`` and a loader as
``voc.datamodule.VOCDataModule`` makes them (``(indices, crops [B, K, 3, H, W], targets)``), so the
images are decoded, resized and cropped by the same code as in training and evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

Encode = Callable[[torch.Tensor], torch.Tensor]


def extract_features(
    encode: Encode,
    loader: Iterable,
    num_images: int,
    *,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
    prepare: Callable[[Any, torch.device], Any] | None = None,
) -> np.ndarray:
    """float32 ``[num_images, D]``: row i is image i's features (``indices`` place each batch), the
    mean over its K crops, computed in float32 from the encoder's output.

    Runs under ``torch.inference_mode`` (no autograd state), and under autocast to
    ``autocast_dtype`` where one is given (e.g. ``torch.bfloat16``); inputs are channels-last.
    ``prepare(batch, device)`` turns each loader batch into that form first (e.g.
    ``VOCDataModule.prepare_eval_batch``, which decodes ``decode="device"`` batches on ``device``).
    Raises ValueError when the loader leaves an image out or yields it twice.
    """
    device = torch.device(device)
    out: np.ndarray | None = None
    seen = np.zeros(num_images, dtype=np.int64)
    with torch.inference_mode():
        for batch in loader:
            indices, crops, _ = batch if prepare is None else prepare(batch, device)
            batch, num_crops = crops.shape[:2]
            flat = crops.flatten(0, 1).to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                features = encode(flat)
            pooled = features.float().reshape(batch, num_crops, -1).mean(dim=1).cpu().numpy()
            if out is None:
                out = np.zeros((num_images, pooled.shape[1]), dtype=np.float32)
            rows = np.asarray(indices, dtype=np.int64)
            out[rows] = pooled
            seen[rows] += 1
    if out is None or not (seen == 1).all():
        missing, twice = int((seen == 0).sum()), int((seen > 1).sum())
        raise ValueError(f"the loader yielded {num_images - missing} of {num_images} images ({twice} more than once)")
    return out
