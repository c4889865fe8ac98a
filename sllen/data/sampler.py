"""Endless, reproducible batch streams for the alternating SS / LLE schedule.

Algorithm 1 of the paper takes one segmentation batch, then one enhancement batch, over and
over, from datasets of unrelated sizes. ``InfiniteLoader`` wraps one DataLoader and restarts
it whenever it runs out, so each stream runs through its own epochs independently;
``alternate(ss, lle)`` interleaves two of them.

Shuffling is by epoch: ``build_loader`` always uses a DistributedSampler (with one replica
and rank 0 when not distributed; it needs no process group then), whose order is a function of
(seed, epoch) only. On every restart InfiniteLoader calls ``set_epoch`` on the sampler, and on
the dataset if it has one (procedural data and augmentation then change per epoch, see
seeding.py). The DataLoader copies the dataset into its workers when an epoch starts
(workers are not persistent), so the new epoch reaches them. A run resumed with
``start_epoch`` sees, from that epoch on, the batches an uninterrupted run would have.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from sllen.runtime.errors import InputError


class SizedDataset(Protocol):
    """A map-style dataset with a length, as every sllen dataset is. torch's ``Dataset``
    declares no ``__len__`` (not every dataset has one), but samplers and loaders need it."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...


def build_loader(
    dataset: SizedDataset,
    batch_size: int,
    seed: int = 0,
    num_workers: int = 0,
    distributed: bool = False,
    shuffle: bool = True,
    drop_last: bool = True,
) -> DataLoader:
    """A DataLoader over ``dataset`` with a (seed, epoch)-determined order.

    ``distributed=True`` shards by the initialised process group (rank, world size);
    ``batch_size`` is per process. ``drop_last`` keeps batch shapes fixed for training.
    """
    ds = cast(Dataset, dataset)  # torch's stubs ask for a Dataset; any SizedDataset works
    sampler: DistributedSampler[int]
    if distributed:
        sampler = DistributedSampler(ds, shuffle=shuffle, seed=seed, drop_last=drop_last)
    else:
        sampler = DistributedSampler(
            ds, num_replicas=1, rank=0, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=_leave_stop_signals_to_the_main_process if num_workers else None,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(seed),  # fixes the workers' base seeds
    )


def _set_epoch(obj: Any, epoch: int) -> None:
    set_epoch = getattr(obj, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)


class InfiniteLoader:
    """Endless batches from ``loader``: a new epoch (set_epoch, reshuffle) when one ends."""

    def __init__(self, loader: DataLoader, start_epoch: int = 0) -> None:
        self.loader = loader
        self.epoch = start_epoch - 1  # the first __next__ starts start_epoch
        self._it: Iterator | None = None

    def _restart(self) -> Iterator[Any]:
        self.epoch += 1
        _set_epoch(self.loader.sampler, self.epoch)
        _set_epoch(self.loader.dataset, self.epoch)
        self._it = iter(self.loader)
        return self._it

    def __iter__(self) -> InfiniteLoader:
        return self

    def __next__(self) -> Any:
        it = self._it if self._it is not None else self._restart()
        try:
            return next(it)
        except StopIteration:
            it = self._restart()
            try:
                return next(it)
            except StopIteration:
                raise InputError(
                    "the loader yields no batches (dataset smaller than one batch with drop_last?)"
                ) from None


def cycle_batches(loader: DataLoader, start_epoch: int = 0) -> Iterator[Any]:
    """An endless iterator over ``loader``'s batches (an InfiniteLoader)."""
    return InfiniteLoader(loader, start_epoch)


def alternate(ss: DataLoader, lle: DataLoader, start_epoch: int = 0) -> Iterator[tuple[str, Any]]:
    """Endless ("ss", batch), ("lle", batch), ("ss", batch), ... ; each restarts on its own."""
    ss_it, lle_it = InfiniteLoader(ss, start_epoch), InfiniteLoader(lle, start_epoch)
    while True:
        yield "ss", next(ss_it)
        yield "lle", next(lle_it)


def _leave_stop_signals_to_the_main_process(worker_id: int) -> None:
    """A data worker ignores SIGTERM and SIGINT: schedulers (SLURM's scancel, systemd) signal
    the job's whole process group, and a worker dying of it took the run down before the main
    process could finish its step and save. The main process stops its workers itself."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
