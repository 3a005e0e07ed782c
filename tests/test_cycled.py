"""Speed measurements cycle a short split to the batches they time (``bench.speed.cycled``), per
process, from outside the datamodule; expectations computed by hand."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DistributedSampler

from bench.speed.cycled import CycledDataset, CycleTo, cycle_loaders, cycled_length
from voc.config import TransformConfig
from voc.datamodule import IndexedDataset, VOCDataModule

THREE = [(torch.tensor([float(i)]), torch.tensor([i])) for i in range(3)]
"""Three ``(image, target)`` items, image ``i`` holding ``i``."""


def test_cycled_dataset_repeats_a_short_dataset_keeping_each_image_index() -> None:
    plain = IndexedDataset(THREE)
    assert len(plain) == 3 and plain[2][0] == 2
    with pytest.raises(IndexError):
        plain[3]
    cycled = CycledDataset(plain, 8)
    assert len(cycled) == 8
    assert [cycled[i][0] for i in range(8)] == [0, 1, 2, 0, 1, 2, 0, 1]  # the index of the image, for dedup
    assert [int(cycled[i][1]) for i in range(8)] == [0, 1, 2, 0, 1, 2, 0, 1]
    for outside in (8, -1):
        with pytest.raises(IndexError):
            cycled[outside]
    assert [item[0] for item in CycledDataset(plain, 3)] == [0, 1, 2]  # as long as the dataset: as it is
    with pytest.raises(ValueError, match="shorter than the dataset"):
        CycledDataset(plain, 2)
    with pytest.raises(ValueError, match="empty dataset"):
        CycledDataset([], 1)
    assert len(CycledDataset([], 0)) == 0


class _RecordingBatches:
    """Five items ``10 * i``, fetched a batch at a time through ``__getitems__``, which records the indices."""

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> int:
        return 10 * index

    def __getitems__(self, indices: Sequence[int]) -> list[int]:
        self.asked.append(list(indices))
        return [10 * i for i in indices]


def test_cycled_batches_go_through_the_wrapped_getitems() -> None:
    inner = _RecordingBatches()
    cycled = CycledDataset(inner, 12)
    assert cycled.__getitems__([11, 4, 5, 7]) == [10, 40, 0, 20]  # 11 % 5 = 1, 4, 5 % 5 = 0, 7 % 5 = 2
    assert inner.asked == [[1, 4, 0, 2]]
    assert CycledDataset(list(range(3)), 5).__getitems__([4, 3]) == [1, 0]  # no __getitems__: item by item
    # the datamodule's decoding threads make a cycled batch too, in order
    threaded = CycledDataset(IndexedDataset(THREE, threads=2), 7)
    assert [item[0] for item in threaded.__getitems__([6, 5, 4, 3])] == [0, 2, 1, 0]
    assert threaded.dataset._pool is not None
    assert pickle.loads(pickle.dumps(threaded)).dataset._pool is None  # a loader worker's copy: no pool


def test_cycled_length_by_hand() -> None:
    assert cycled_length(7, 5, 3, 1) == 15  # 5 batches of 3
    assert cycled_length(7, 5, 3, 2) == 30  # 5 batches of 3 in each of 2 processes
    assert cycled_length(20, 5, 2, 2) == 20  # already 5 batches of 2 in each of 2 processes
    assert cycled_length(20, 12, 2, 1) == 24


def test_cycle_to_lengthens_only_a_short_dataset() -> None:
    plain = IndexedDataset(THREE)
    assert CycleTo(1)(plain, 3, 1) is plain  # 3 items are one batch of 3
    longer = CycleTo(2)(plain, 2, 2)  # 2 batches of 2 in each of 2 processes: 8 items
    assert isinstance(longer, CycledDataset) and len(longer) == 8
    assert pickle.loads(pickle.dumps(CycleTo(4))) == CycleTo(4)  # a datamodule handed to spawned processes
    with pytest.raises(ValueError, match="min_batches must be >= 1"):
        CycleTo(0)


def _datamodule(root: Path) -> VOCDataModule:
    return VOCDataModule(root, transform=TransformConfig(resize=40, crop=32, crop_mode="center"), batch_size=2,
                         eval_batch_size=3, num_workers=0)


def test_cycle_loaders_gives_every_loader_the_batches_asked(tiny_voc: Path) -> None:
    """20 train images in batches of 2 and 7 val images in batches of 3: 10 and 3 batches as they are;
    cycled to 12 batches, 24 train items and 36 val items, every batch full."""
    plain = _datamodule(tiny_voc)
    assert (len(plain.train_dataloader()), len(plain.test_dataloader())) == (10, 3)
    datamodule = cycle_loaders(_datamodule(tiny_voc), 12)
    train, test = datamodule.train_dataloader(), datamodule.test_dataloader()
    assert (len(train.dataset), len(test.dataset)) == (24, 36)
    train_batches = [indices.tolist() for indices, _, _ in train]
    assert [len(b) for b in train_batches] == [2] * 12
    assert sorted(i for b in train_batches for i in b) == sorted([*range(20), 0, 1, 2, 3])  # shuffled, 0..3 twice
    test_indices = [indices.tolist() for indices, _, _ in test]
    assert test_indices == [[i % 7 for i in range(b, b + 3)] for b in range(0, 36, 3)]  # [0, 1, 2], ... [6, 0, 1]
    crops = next(iter(test))[1]
    assert crops.shape == (3, 1, 3, 32, 32)  # the images themselves, transformed


def test_cycle_loaders_counts_batches_per_process(tiny_voc: Path) -> None:
    """Under 2 processes a distributed sampler deals the items out: 12 batches of 3 in each is 72
    val items; the 20 train images are already 5 batches of 2 in each."""
    datamodule = cycle_loaders(_datamodule(tiny_voc), 12)
    datamodule.trainer = SimpleNamespace(world_size=2)  # what the datamodule reads of its trainer
    test = datamodule.test_dataloader()
    assert len(test.dataset) == 72
    for rank in (0, 1):
        sampler = DistributedSampler(test.dataset, num_replicas=2, rank=rank, shuffle=False)
        assert len(sampler) == 36  # 12 batches of 3 in this process
    small = cycle_loaders(_datamodule(tiny_voc), 5)
    small.trainer = SimpleNamespace(world_size=2)
    assert len(small.train_dataloader().dataset) == 20  # 5 x 2 x 2 = 20: not lengthened
