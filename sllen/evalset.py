"""The evaluation set: real photographs that ship inside Python packages, darkened.

The photos (scikit-image's astronaut, chelsea, coffee, rocket and stereo motorcycle;
scikit-learn's china and flower; matplotlib's grace_hopper) are everyday colour photographs
that nobody on this project made. They are never used for training (the default model trains
on procedural scenes only); here each is darkened by sllen's low-light synthesis at several
exposures, with and without inhomogeneous light, always with sensor noise, at its own size,
with a fixed seed per (photo, condition): the set is identical on every machine.

Install the packages with `python -m pip install ".[eval]"`; photos whose package is missing are
skipped with a note.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sllen.data.synthesis import SynthesisParams, synthesize_low
from sllen.runtime.errors import InputError, install_hint
from sllen.runtime.images import write_image

# Exposure is the linear-light scale at the brightest point: 0.03 is ~5 stops under, 0.2
# ~2.3 stops under.
EXPOSURES = (0.03, 0.08, 0.2)
INHOMOGENEOUS = (False, True)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        img = getattr(skimage.data, name)()
        return img[0] if isinstance(img, tuple) else img

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


def _matplotlib(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)) as im:
            return np.asarray(im.convert("RGB"))

    return load


PHOTOS: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    "astronaut": ("scikit-image", _skimage("astronaut")),
    "chelsea": ("scikit-image", _skimage("chelsea")),
    "coffee": ("scikit-image", _skimage("coffee")),
    "rocket": ("scikit-image", _skimage("rocket")),
    "motorcycle": ("scikit-image", _skimage("stereo_motorcycle")),
    "china": ("scikit-learn", _sklearn("china.jpg")),
    "flower": ("scikit-learn", _sklearn("flower.jpg")),
    "grace_hopper": ("matplotlib", _matplotlib("grace_hopper.jpg")),
}


@dataclass(frozen=True)
class Condition:
    exposure: float
    inhomogeneous: bool
    noise: bool = True

    @property
    def tag(self) -> str:
        light = "-light" if self.inhomogeneous else ""
        return f"e{round(self.exposure * 1000):03d}{light}{'' if self.noise else '-clean'}"


CONDITIONS = tuple(Condition(e, i) for e in EXPOSURES for i in INHOMOGENEOUS)
# The well-lit set (sllen-eval --well-lit): the same photographs as they are (8 bits, no
# noise), 1 and 2 stops under: how much a model changes an image that needs little or nothing.
# A low-light model trained only on dark captures brightens and washes these out.
WELL_LIT_CONDITIONS = (
    Condition(1.0, False, noise=False),
    Condition(0.5, False),
    Condition(0.25, False),
)


def load_photos(names: list[str] | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Float RGB photos by name, and notes on those that could not be loaded."""
    photos, notes = {}, []
    for name in names or list(PHOTOS):
        if name not in PHOTOS:
            raise InputError(f"unknown evaluation photo {name!r}; known: {', '.join(PHOTOS)}")
        package, load = PHOTOS[name]
        try:
            img = load()
        except ImportError:
            notes.append(f"{name} skipped: {package} is not installed")
            continue
        photos[name] = np.asarray(img, dtype=np.float32)[..., :3] / 255.0
    if not photos:
        # [train] too: the set is scored with the bundled PyTorch model unless --model is given
        no_torch = importlib.util.find_spec("torch") is None
        hint = install_hint("train,eval", torch=no_torch)
        raise InputError(f"no evaluation photos available: {hint}")
    return photos, notes


def _seed(name: str, cond: Condition) -> int:
    return int.from_bytes(hashlib.sha256(f"{name}/{cond.tag}".encode()).digest()[:4], "little")


def darken_photo(img: np.ndarray, name: str, cond: Condition) -> np.ndarray:
    params = SynthesisParams.fixed(
        exposure=cond.exposure, inhomogeneous=cond.inhomogeneous, noise=cond.noise
    )
    low, _ = synthesize_low(img, np.random.default_rng(_seed(name, cond)), params)
    return low


def write_evalset(
    out: str | os.PathLike,
    names: list[str] | None = None,
    conditions: tuple[Condition, ...] = CONDITIONS,
) -> tuple[Path, list[str]]:
    """Write the set as a paired folder (low/ + high/, PNG), one pair per photo x condition
    (``WELL_LIT_CONDITIONS`` for the well-lit set)."""
    out = Path(out)
    photos, notes = load_photos(names)
    for name, img in photos.items():
        for cond in conditions:
            stem = f"{name}_{cond.tag}"
            write_image(out / "high" / f"{stem}.png", img)
            write_image(out / "low" / f"{stem}.png", darken_photo(img, name, cond))
    return out, notes
