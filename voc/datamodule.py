"""LightningDataModule: a VOC train split and an eval split through the protocol's transforms."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from voc.cache import ResizedImageCache
from voc.config import LabelConfig, TransformConfig
from voc.dataset import VOCClassification
from voc.transforms import build_transform

log = logging.getLogger(__name__)


class IndexedDataset(Dataset):
    """Wraps a ``(image, target)`` dataset to yield ``(index, image, target)``.

    The index lets evaluation drop the duplicates a ``DistributedSampler`` pads in (or a wrapper
    around this one repeats) and put every prediction back in dataset order.
    """

    def __init__(self, dataset: Dataset, threads: int = 0) -> None:
        self.dataset = dataset
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        image, target = self.dataset[index]
        return index, image, target

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """A batch's items; with ``threads`` > 1, made by that many threads at once (decoding and
        resizing release the GIL), in order. A loader with no workers fetches batches this way."""
        if self.threads <= 1 or len(indices) <= 1:
            return [self[i] for i in indices]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="voc-decode")
        return list(self._pool.map(self.__getitem__, indices))

    def __getstate__(self) -> dict[str, Any]:
        # a loader worker gets the dataset pickled: without the pool (workers fetch items one by one)
        return {**self.__dict__, "_pool": None}


class EncodedImages(NamedTuple):
    """A batch's files, undecoded (``decode="device"``): their bytes one after another in ``data``
    (uint8 ``[sum of lengths]``) and each file's length in ``lengths`` (int64 ``[B]``). One tensor,
    not one per file, crosses from a loader worker to the main process."""

    data: torch.Tensor
    lengths: torch.Tensor

    def files(self) -> list[torch.Tensor]:
        """Each file's bytes, a uint8 tensor ``[N]`` (views into :attr:`data`)."""
        return list(torch.split(self.data, self.lengths.tolist()))


def collate_encoded(
    items: Sequence[tuple[int, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, EncodedImages, torch.Tensor]:
    """``(indices [B], EncodedImages, targets [B, 20])`` of items whose images are a file's bytes."""
    indices, encoded, targets = zip(*items, strict=True)
    images = EncodedImages(torch.cat(encoded), torch.tensor([len(e) for e in encoded], dtype=torch.int64))
    return default_collate(list(indices)), images, default_collate(list(targets))


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_num_workers() -> int:
    """DataLoader workers for this machine: one core stays with the compute threads."""
    return max(0, min(8, available_cores() - 1))


class VOCDataModule(pl.LightningDataModule):
    """VOC train/eval splits as loaders of ``(index, crops [B, K, 3, H, W], targets [B, 20])``.

    ``labels`` (``voc.config.LabelConfig``; by default images without a positive label are left
    out) and ``transform`` (``voc.config.TransformConfig``) apply to both splits; the train split
    gets the random augmentation, the eval split does not. ``exclude`` maps a split to the ids to
    leave out of it and why. ``prepare_data`` does nothing: the data must already be on disk
    (``python -m voc download`` or ``python -m voc synth``). With ``cache_dir``, each split's
    images are decoded (by PIL) and resized once into a memory-mapped cache there (``voc.cache``) and
    later epochs read that. The train loader shuffles with a generator seeded by ``seed`` (each
    loader has its own, none draws from the global RNG). The
    eval split serves ``val_dataloader``, ``test_dataloader`` and ``predict_dataloader`` alike. With
    ``transform.decode == "device"`` the eval loader yields the files' bytes and
    :meth:`on_before_batch_transfer` makes the crops on the trainer's device (:meth:`prepare_eval_batch`).
    With ``num_workers=0`` and ``loader_threads`` > 1, the main process makes each batch with that
    many threads (:meth:`IndexedDataset.__getitems__`) between the model's steps, instead of workers
    running beside it.

    ``loader_dataset_hook`` (an attribute, ``None`` by default), where set, is called as
    ``hook(dataset, batch_size, processes)`` each time a loader is made, with the loader's
    :class:`IndexedDataset`, its batch size and the processes a distributed sampler deals its items
    out to (the trainer's world size; 1 without a trainer); the loader serves what it returns.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        year: str = "2012",
        train_split: str = "train",
        eval_split: str = "val",
        labels: LabelConfig = LabelConfig(positive_only=True),
        transform: TransformConfig = TransformConfig(),
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int | None = None,
        cache_dir: str | Path | None = None,
        seed: int = 0,
        skip_bad_images: bool = False,
        exclude: Mapping[str, Mapping[str, str]] | None = None,
        loader_threads: int = 0,
    ) -> None:
        super().__init__()
        if cache_dir is not None and transform.decode != "pil":
            raise ValueError(
                f"cache_dir (--cache-dir) stores images decoded and resized by PIL, so it does not combine with "
                f"decode={transform.decode!r} (--decode {transform.decode}): drop one of the two"
            )
        self.root = Path(root)
        self.year = year
        self.train_split = train_split
        self.eval_split = eval_split
        self.label_config = labels
        self.transform_config = transform
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.seed = seed
        self.skip_bad_images = skip_bad_images
        self.exclude = dict(exclude or {})
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.loader_threads = loader_threads
        self.loader_dataset_hook: Callable[[Dataset, int, int], Dataset] | None = None
        self.train_transform: Callable = build_transform(transform, train=True)
        self.eval_transform: Callable = build_transform(transform, train=False)
        self.train_set: VOCClassification | None = None
        self.eval_set: VOCClassification | None = None

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._dataset(self.train_split, self.train_transform)
        if self.eval_set is None:
            self.eval_set = self._dataset(self.eval_split, self.eval_transform)

    def _dataset(self, split: str, transform: Callable) -> VOCClassification:
        dataset = VOCClassification(
            self.root,
            self.year,
            split,
            labels=self.label_config,
            transform=transform,
            skip_bad_images=self.skip_bad_images,
            exclude=self.exclude.get(split),
        )
        if self.cache_dir is not None:
            paths = [dataset.image_path(i) for i in range(len(dataset))]
            config = self.transform_config
            dataset.image_cache = ResizedImageCache.open_or_build(
                self.cache_dir, paths, resize=config.resize, crop_mode=config.crop_mode,
                interpolation=config.interpolation,
            )
        return dataset

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        # every loader its own generator: making one draws its workers' base seed from it, so an eval
        # loader made mid-training (validation) leaves the global RNG, and so the training, as they were
        generator = torch.Generator().manual_seed(self.seed)
        on_device = getattr(getattr(dataset, "transform", None), "on_device", False)
        served: Dataset = IndexedDataset(dataset, threads=self.loader_threads if self.num_workers == 0 else 0)
        if self.loader_dataset_hook is not None:
            processes = self.trainer.world_size if self.trainer is not None else 1
            served = self.loader_dataset_hook(served, batch_size, processes)
        return DataLoader(
            served,
            batch_size=batch_size,
            collate_fn=collate_encoded if on_device else None,
            shuffle=shuffle,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        if self.eval_set is None:
            self.setup("validate")
        return self._loader(self.eval_set, self.eval_batch_size, shuffle=False)

    test_dataloader = val_dataloader
    predict_dataloader = val_dataloader

    def prepare_eval_batch(self, batch: Any, device: torch.device | str) -> Any:
        """An eval batch as the model takes it: with ``decode="device"``, its JPEGs (the loader's
        :func:`collate_encoded` :class:`EncodedImages`) decoded, resized, cropped and normalised on ``device``
        by the eval transform's ``decode_batch``; any other batch unchanged."""
        if not (isinstance(batch, (tuple, list)) and len(batch) == 3 and isinstance(batch[1], EncodedImages)):
            return batch
        indices, encoded, targets = batch
        # an EncodedImages batch comes from this module's eval loader, whose making set up eval_set
        paths = [self.eval_set.image_path(int(i)) for i in indices]  # type: ignore[union-attr]
        return indices, self.eval_transform.decode_batch(encoded.files(), device, paths), targets

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Lightning's hook, in the main process before the batch moves to the device:
        :meth:`prepare_eval_batch` onto the trainer's device."""
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        return self.prepare_eval_batch(batch, device)
