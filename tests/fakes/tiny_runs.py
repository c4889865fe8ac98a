"""The short training runs the trainer tests share: the tiny preset, small crops, one thread."""

from pathlib import Path

from sllen.train.config import TrainConfig


def tiny_run(out: Path, **kw) -> TrainConfig:
    base = dict(
        out=out,
        preset="tiny",
        steps=20,
        batch_size=4,
        ss_batch_size=4,
        crop_size=64,
        lr=2e-3,
        val_images=4,
        val_every=10,
        save_every=10,
        threads=1,  # one thread: the suite runs on 2 cores beside other tests
    )
    base.update(kw)
    return TrainConfig(**base)
