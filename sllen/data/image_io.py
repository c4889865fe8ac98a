"""Image files <-> float images.

Conventions: a "float image" is a numpy float32 array HxWx3, RGB, values in [0, 1]; files hold
uint8 (or, when read, 16-bit) data.

``read_image`` normalises whatever Pillow opens:
- EXIF orientation is applied first (ImageOps.exif_transpose), so phone photos are upright.
- Grayscale (1, L) is replicated to three channels.
- Alpha (RGBA, LA, palette with transparency) is dropped, not composited: the colour values
  are kept as stored, because low-light datasets never use alpha for meaning.
- Palette (P) images are expanded through their palette.
- 16-bit integer images (I;16*, and I, the mode Pillow gives some 16-bit files) are divided
  by 65535; 32-bit float (F) images are taken as already in [0, 1]. Both are clipped to
  [0, 1]. Pillow has no 16-bit RGB mode: such files arrive as 8-bit RGB.
- Any other mode (CMYK, YCbCr, ...) goes through Pillow's convert("RGB").
Failures (missing file, not an image, truncated data) raise ImageReadError, a ValueError whose
one-line message names the path.

``write_image`` takes a float image (clipped, rounded to 8 bits) or uint8, HxWx3 or HxW, and
writes atomically: a temporary file in the target folder, then os.replace, so a reader never
sees half a file. The format comes from the suffix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sllen.fileio import atomic_write

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageReadError(ValueError):
    """A file that could not be read as an image."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read ``path`` as a float image (float32 HxWx3 RGB in [0, 1])."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()  # decode now, inside the try: truncated files fail here
            return _to_float_rgb(ImageOps.exif_transpose(im))
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ImageReadError(f"{path}: unreadable image ({reason})") from None


def _to_float_rgb(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "F":
        scale = 1.0 if mode == "F" else 65535.0
        gray = np.clip(np.asarray(im, dtype=np.float32) / scale, 0.0, 1.0)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("1", "L", "LA", "La"):
        gray = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("P", "PA"):
        # Via RGBA so palette transparency does not trigger Pillow's warning; alpha dropped.
        rgb = np.asarray(im.convert("RGBA"))[:, :, :3]
    else:
        rgb = np.asarray(im.convert("RGB"))  # RGBA -> RGB drops alpha without compositing
    return rgb.astype(np.float32) / 255.0


def to_uint8(img: np.ndarray) -> np.ndarray:
    """uint8 passes through; floats are clipped to [0, 1] and rounded to 0..255."""
    if img.dtype == np.uint8:
        return img
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"expected a float or uint8 image, got dtype {img.dtype}")
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_image(path: str | os.PathLike[str], img: np.ndarray, quality: int = 95) -> None:
    """Write a float or uint8 image (HxWx3, HxWx1 or HxW) to ``path``, atomically.

    ``quality`` applies to JPEG and WebP. Missing parent folders are created.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image suffix {path.suffix!r}")
    data = to_uint8(np.asarray(img))
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    if not (data.ndim == 2 or (data.ndim == 3 and data.shape[2] == 3)):
        raise ValueError(f"expected an HxWx3 or HxW image, got shape {data.shape}")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    atomic_write(path, lambda tmp: Image.fromarray(data).save(tmp, format=fmt, **options))


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder`` (suffix in IMAGE_SUFFIXES, any case), sorted.

    Hidden files are skipped: archives unpacked on macOS carry "._name.png" resource forks.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
