"""Short splits cycled, so that every speed figure is timed over all its batches.

A speed measurement times a set number of batches after its warm-up; a split with fewer batches
would end the timing early. :func:`cycle_loaders` makes a datamodule's loaders yield at least that
many full batches per process by cycling the split (:class:`CycledDataset`), through the
datamodule's generic ``loader_dataset_hook`` (``voc.datamodule.VOCDataModule``), which knows nothing
of speed measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset

if TYPE_CHECKING:
    from voc.datamodule import VOCDataModule


class CycledDataset(Dataset):
    """``dataset``'s ``n`` items presented as ``length`` items (``length`` >= ``n``), cycling through
    them: item ``i`` is ``dataset[i % n]``.

    Around ``voc.datamodule.IndexedDataset`` items ``(index, image, target)``, a repeat keeps its
    image's index, so evaluation drops the repeats as it drops a distributed sampler's padding. A
    batch's items are fetched with ``dataset.__getitems__`` where it has one (the datamodule's
    decoding threads).
    """

    def __init__(self, dataset: Dataset, length: int) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if length < n:
            raise ValueError(f"length {length} is shorter than the dataset ({n} items); it only lengthens")
        if length > 0 and n == 0:
            raise ValueError("an empty dataset cannot be cycled")
        self.dataset = dataset
        self.n = n
        self.length = length

    def __len__(self) -> int:
        return self.length

    def source_index(self, index: int) -> int:
        """The index in ``dataset`` of item ``index`` (``0 <= index < length``, else ``IndexError``)."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        return index % self.n

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.source_index(index)]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """A batch's items, in order: those of ``dataset.__getitems__`` where it has one."""
        sources = [self.source_index(i) for i in indices]
        getitems = getattr(self.dataset, "__getitems__", None)
        return list(getitems(sources)) if getitems is not None else [self.dataset[i] for i in sources]


def cycled_length(items: int, min_batches: int, batch_size: int, processes: int) -> int:
    """Items a loader of ``batch_size`` needs for ``min_batches`` full batches in each of ``processes``
    processes (a distributed sampler deals the items out): ``items`` where that is already enough."""
    return max(items, min_batches * batch_size * processes)


@dataclass(frozen=True)
class CycleTo:
    """A ``VOCDataModule.loader_dataset_hook``: a loader's dataset cycled to
    :func:`cycled_length` items when it is shorter, else left as it is. Picklable, as a datamodule
    handed to spawned processes must be."""

    min_batches: int

    def __post_init__(self) -> None:
        if self.min_batches < 1:
            raise ValueError(f"min_batches must be >= 1, not {self.min_batches}")

    def __call__(self, dataset: Dataset, batch_size: int, processes: int) -> Dataset:
        items = len(dataset)  # type: ignore[arg-type]
        length = cycled_length(items, self.min_batches, batch_size, processes)
        return dataset if length == items else CycledDataset(dataset, length)


def cycle_loaders(datamodule: VOCDataModule, min_batches: int) -> VOCDataModule:
    """``datamodule``, changed so that every loader it makes from now on yields at least
    ``min_batches`` full batches per process, a shorter split cycled (:class:`CycleTo`); returned."""
    datamodule.loader_dataset_hook = CycleTo(min_batches)
    return datamodule
