"""Endless, independently restarting loaders for the alternating SS / LLE schedule."""

import itertools

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from sllen.data.procedural import SceneSegmentationDataset
from sllen.data.sampler import InfiniteLoader, alternate, build_loader, cycle_batches


class Numbers(Dataset):
    """Items 0..n-1 (offset by ``base``); records the epochs it was told about."""

    def __init__(self, n, base=0):
        self.n, self.base, self.epochs = n, base, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.base + i

    def set_epoch(self, epoch):
        self.epochs.append(epoch)


def _epochs(batches, per_epoch):
    flat = [int(x) for b in batches for x in b]
    return [flat[i : i + per_epoch] for i in range(0, len(flat), per_epoch)]


def test_alternate_cycles_two_datasets_of_different_sizes():
    ss_data, lle_data = Numbers(6), Numbers(4, base=100)
    ss = build_loader(ss_data, batch_size=2, seed=0)
    lle = build_loader(lle_data, batch_size=2, seed=0)
    steps = list(itertools.islice(alternate(ss, lle), 24))
    assert [kind for kind, _ in steps] == ["ss", "lle"] * 12
    ss_epochs = _epochs([b for k, b in steps if k == "ss"], 6)
    lle_epochs = _epochs([b for k, b in steps if k == "lle"], 4)
    assert len(ss_epochs) == 4 and len(lle_epochs) == 6
    assert all(sorted(e) == list(range(6)) for e in ss_epochs)
    assert all(sorted(e) == list(range(100, 104)) for e in lle_epochs)
    assert len({tuple(e) for e in ss_epochs}) > 1  # reshuffled per epoch
    assert ss_data.epochs == [0, 1, 2, 3] and lle_data.epochs == list(range(6))


def test_order_depends_only_on_seed_and_epoch():
    def first(seed, start_epoch=0):
        it = cycle_batches(build_loader(Numbers(10), 5, seed=seed), start_epoch)
        return [x.tolist() for x in itertools.islice(it, 4)]

    assert first(1) == first(1)
    assert first(1) != first(2)
    assert first(1, start_epoch=1) == first(1)[2:] + first(1, start_epoch=2)[:2]


def test_distributed_samplers_get_set_epoch_and_shard():
    data = Numbers(8)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=3)
        it = InfiniteLoader(DataLoader(data, batch_size=2, sampler=sampler))
        seen.append(_epochs(list(itertools.islice(it, 4)), 4))
        assert sampler.epoch == 1
    for epoch in range(2):
        assert sorted(seen[0][epoch] + seen[1][epoch]) == list(range(8))


def test_build_loader_in_a_process_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        loader = build_loader(Numbers(5), batch_size=2, seed=0, distributed=True)
        assert isinstance(loader.sampler, DistributedSampler)
        items = [int(x) for b in loader for x in b]
        assert len(loader) == 2 and len(items) == len(set(items)) == 4  # drop_last
    finally:
        dist.destroy_process_group()


def test_workers_give_the_same_batches_as_the_main_process():
    ds = SceneSegmentationDataset(length=4, size=16, seed=0)
    main = list(itertools.islice(cycle_batches(build_loader(ds, 2, seed=0)), 3))
    ds2 = SceneSegmentationDataset(length=4, size=16, seed=0)
    workers = list(itertools.islice(cycle_batches(build_loader(ds2, 2, seed=0, num_workers=2)), 3))
    for a, b in zip(main, workers, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


def test_a_loader_without_batches_is_an_error():
    with pytest.raises(ValueError, match="no batches"):
        next(cycle_batches(build_loader(Numbers(3), batch_size=4)))
