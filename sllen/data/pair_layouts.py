"""Finding low/normal-light image pairs on disk, in the real datasets' own layouts (no torch).

Layouts (``root`` may be the folder named here or the folder that contains it):
- generic: ``root/low/`` and ``root/high/`` (folder names in any case; ``normal/`` is taken
  for ``high/``, as in LOL-v2's Low/Normal);
- LOL: ``LOL/our485/{low,high}`` (split "train", 485 pairs) and ``LOL/eval15/{low,high}``
  (split "eval", 15 pairs); the archive unpacks as ``LOLdataset/``, which is found too;
- LSRW: ``LSRW/Training data/<camera>/{low,high}`` (split "train") and
  ``LSRW/Eval/<camera>/{low,high}`` (split "eval"), cameras Huawei and Nikon; every camera
  folder found is used, concatenated in name order.
``detect_layout(root)`` says which of these ``root`` holds; ``find_pairs(root, split)`` lists
its pairs (None when ``root`` holds no paired layout, so callers can fall back to a plain
folder of images). The generic layout has no splits: ``split`` is ignored there.

Pairs are matched by file stem (``12.png`` in low/ with ``12.jpg`` in high/ is a pair).
Differing stems, two files with one stem, images of a pair that differ in size (read from the
file headers, so a bad pair stops a run before its first step, not when a step draws it) or no
images at all raise ValueError with the first offending names. Names are the stem, prefixed by
the camera for LSRW ("Huawei/123").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sllen.runtime.errors import InputError
from sllen.runtime.image_meta import ORIENTATION, header_exif
from sllen.runtime.images import list_images

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

SPLITS = ("train", "eval")
_LOW_NAMES = ("low",)
_HIGH_NAMES = ("high", "normal")
_LOL_SPLITS = {"train": "our485", "eval": "eval15"}
_LSRW_SPLITS = {"train": "Training data", "eval": "Eval"}
_SHOW = 5  # names quoted in an error message


class ImagePair(NamedTuple):
    """One pair; unpacks as ``name, low, high``."""

    name: str
    low: Path
    high: Path


def _subfolder(root: Path, names: Sequence[str]) -> Path | None:
    """The child of ``root`` whose lower-cased name is in ``names``."""
    if not root.is_dir():
        return None
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() in names:
            return child
    return None


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in list_images(folder):
        if p.stem in files:
            raise InputError(
                f"{folder}: two images named {p.stem!r}: {files[p.stem].name}, {p.name}"
            )
        files[p.stem] = p
    return files


def _quote(names: Sequence[str]) -> str:
    more = f" (+{len(names) - _SHOW} more)" if len(names) > _SHOW else ""
    return ", ".join(names[:_SHOW]) + more


def pair_folder(folder: str | os.PathLike[str], prefix: str = "") -> list[ImagePair]:
    """Match ``folder/low`` with ``folder/high`` by stem; names get ``prefix``."""
    folder = Path(folder)
    low_dir, high_dir = _subfolder(folder, _LOW_NAMES), _subfolder(folder, _HIGH_NAMES)
    if low_dir is None or high_dir is None:
        raise InputError(f"{folder}: expected subfolders low/ and high/ (or normal/)")
    low, high = _by_stem(low_dir), _by_stem(high_dir)
    only_low = sorted(low.keys() - high.keys())
    only_high = sorted(high.keys() - low.keys())
    if only_low or only_high:
        lo, hi = f"{low_dir.name}/", f"{high_dir.name}/"  # as the folder names them: normal/
        parts = [f"{len(only_low)} in {lo} without a match: {_quote(only_low)}"] if only_low else []
        if only_high:
            parts.append(f"{len(only_high)} in {hi} without a match: {_quote(only_high)}")
        raise InputError(f"{folder}: {lo} and {hi} differ: " + "; ".join(parts))
    if not low:
        raise InputError(f"{folder}: no images in {low_dir.name}/ and {high_dir.name}/")
    pairs = [ImagePair(prefix + s, low[s], high[s]) for s in sorted(low)]
    _check_sizes(folder, pairs, f"{low_dir.name}/", f"{high_dir.name}/")
    return pairs


def upright_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of the image as sllen.runtime.images reads it (EXIF rotation applied),
    from the file's header only; None where Pillow cannot tell (reading it says why)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.format == "TIFF":  # Pillow 11+ reports a rotated TIFF's size upright: the
                width, height = im.tag_v2[256], im.tag_v2[257]  # stored size, as elsewhere
            orientation = _orientation(path, im)
    except Exception:  # Pillow raises many types for odd files; the read reports them
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _orientation(path: Path, im: PILImage) -> int:
    """The EXIF orientation the reader applies. Pillow's PNG getexif decodes the pixels to
    reach an eXIf chunk written after them: the reader's own chunk scan instead."""
    if im.format == "PNG" and "exif" not in im.info:
        return header_exif(path)[0]
    try:
        return int(im.getexif().get(ORIENTATION, 1))
    except (TypeError, ValueError):
        return 1


def _check_sizes(folder: Path, pairs: Sequence[ImagePair], lo: str, hi: str) -> None:
    """Refuse the pairs whose low and high images differ in size, naming both sizes."""
    bad = []
    for name, low_path, high_path in pairs:
        low, high = upright_size(low_path), upright_size(high_path)
        if low is not None and high is not None and low != high:
            bad.append(f"{name} ({low[0]}x{low[1]} and {high[0]}x{high[1]})")
    if bad:
        n = f"{len(bad)} pair" + ("s" if len(bad) > 1 else "")
        raise InputError(f"{folder}: {lo} and {hi} differ in size for {n}: {_quote(bad)}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}")


def _locate(root: Path, child: str) -> Path | None:
    """``root/child``, or ``root/<any folder>/child`` (the dataset's own top folder)."""
    if (root / child).is_dir():
        return root / child
    if root.is_dir():
        for sub in sorted(root.iterdir()):
            if (sub / child).is_dir():
                return sub / child
    return None


def lol_pairs(root: str | os.PathLike[str], split: str = "train") -> list[ImagePair]:
    """LOL: our485 (train) or eval15 (eval)."""
    _check_split(split)
    folder = _locate(Path(root), _LOL_SPLITS[split])
    if folder is None:
        raise InputError(f"{root}: no LOL folder {_LOL_SPLITS[split]}/ found")
    return pair_folder(folder)


def _lsrw_cameras(root: Path, split: str) -> list[Path]:
    folder = _locate(root, _LSRW_SPLITS[split])
    if folder is None:
        return []
    return [c for c in sorted(folder.iterdir()) if _subfolder(c, _LOW_NAMES) is not None]


def lsrw_pairs(root: str | os.PathLike[str], split: str = "train") -> list[ImagePair]:
    """LSRW: all cameras of "Training data" (train) or "Eval" (eval), concatenated."""
    _check_split(split)
    cameras = _lsrw_cameras(Path(root), split)
    if not cameras:
        raise InputError(f"{root}: no LSRW folder '{_LSRW_SPLITS[split]}/<camera>/low' found")
    return [p for cam in cameras for p in pair_folder(cam, prefix=f"{cam.name}/")]


def _layout(root: Path) -> str | None:
    if not root.is_dir():
        return None
    if any(_locate(root, name) for name in _LOL_SPLITS.values()):
        return "lol"
    if any(_lsrw_cameras(root, split) for split in SPLITS):
        return "lsrw"
    if _subfolder(root, _LOW_NAMES) and _subfolder(root, _HIGH_NAMES):
        return "folder"
    return None


def _split_folders(root: Path) -> list[Path]:
    """The subfolders of ``root`` that hold a paired layout of their own: the split folders
    of a public copy (LOL's train/ and test/, each with low/ + normal/)."""
    if not root.is_dir():
        return []
    return [c for c in sorted(root.iterdir()) if c.is_dir() and _layout(c) is not None]


def _no_layout(root: Path) -> str:
    """Why ``root`` holds no paired layout, and what to pass instead where that is clear."""
    if not root.is_dir():
        return f"{root}: {'a file, not a folder' if root.exists() else 'no such folder'}"
    message = (
        f"{root}: no paired layout found (looked for LOL our485/ or eval15/, "
        "LSRW 'Training data/' or Eval/, and low/ + high/ or normal/)"
    )
    splits = _split_folders(root)
    if splits:
        names = ", ".join(f"{s.name}/" for s in splits)
        pick = next((s for s in splits if "train" in s.name.lower()), splits[0])
        message += f"; {names} in it hold pairs: pass one of them by name, e.g. {pick}"
    return message


def detect_layout(root: str | os.PathLike[str]) -> str:
    """Which layout ``root`` holds: "lol", "lsrw" or "folder"; ValueError if none."""
    layout = _layout(Path(root))
    if layout is None:
        raise InputError(_no_layout(Path(root)))
    return layout


def find_pairs(root: str | os.PathLike[str], split: str = "eval") -> list[ImagePair] | None:
    """The pairs of ``split`` in ``root``, whatever its layout; None if it has none.

    The default split is "eval": this is what evaluation asks for. Training uses
    paired.find_paired, whose default is "train". A folder whose only content is split
    folders of pairs (a public copy's train/ and test/) raises, naming them: it is no plain
    folder of images either.
    """
    _check_split(split)
    layout = _layout(Path(root))
    if layout is None and _split_folders(Path(root)) and not list_images(root):
        raise InputError(_no_layout(Path(root)))
    if layout == "lol":
        return lol_pairs(root, split)
    if layout == "lsrw":
        return lsrw_pairs(root, split)
    if layout == "folder":
        return pair_folder(root)
    return None
