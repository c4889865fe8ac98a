"""Per-item random generators, identical in every process.

Datasets never use global random state: item ``i`` of a dataset built with ``seed`` in epoch
``epoch`` draws from ``item_rng(seed, i, epoch)``, a numpy Generator seeded by the
SeedSequence of ``[seed, epoch, index]``. So an item is the same every time it is read, in any
DataLoader worker or DDP rank, and changes only when the epoch does (``set_epoch``).
"""

from __future__ import annotations

import numpy as np

from sllen.runtime.errors import InputError


def item_rng(seed: int, index: int, epoch: int = 0) -> np.random.Generator:
    """The generator for one dataset item; all three numbers must be >= 0."""
    if seed < 0 or index < 0 or epoch < 0:
        raise InputError(f"seed, index and epoch must be >= 0, got {seed}, {index}, {epoch}")
    return np.random.default_rng([int(seed), int(epoch), int(index)])


class EpochMixin:
    """``set_epoch`` for datasets whose items depend on (seed, epoch, index).

    InfiniteLoader calls it before each pass; a DataLoader copies the dataset into its workers
    when an iterator is created, so the new epoch reaches non-persistent workers.
    """

    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng_for(self, index: int) -> np.random.Generator:
        return item_rng(self.seed, index, self.epoch)
