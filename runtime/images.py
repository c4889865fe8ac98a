"""Reading and writing still images the way a user expects, without torch: the one image
reader of sllen (runtime, evaluation, calibration and training all read through it).

Whatever comes in goes back out in the same form: an 8-bit JPEG stays a JPEG (EXIF and colour
profile kept), a 16-bit PNG or TIFF stays 16-bit, a grayscale photo stays grayscale, an RGBA
PNG keeps its alpha channel untouched. The network sees float RGB in [0, 1]; :class:`Picture`
remembers how to put the result back.

Pillow reads 16-bit-per-channel RGB and grey+alpha PNGs as 8-bit (it has no such modes), so
those go through pypng, and 16-bit TIFFs through tifffile: both small, pure-Python readers of
the formats. Their metadata (EXIF rotation included) is handled in :mod:`image_meta`.

For training and evaluation, :func:`read_image` gives just the float RGB (grayscale replicated,
alpha dropped, not composited: low-light datasets never use alpha for meaning), and
:func:`write_image` writes a float or uint8 array (8 bits, format from the suffix).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sllen.runtime.errors import InputError, MissingFileError, install_hint
from sllen.runtime.files import atomic_write
from sllen.runtime.image_meta import (
    append_sub_ifds,
    header_exif,
    header_info,
    kept_exif,
    orient,
    pillow_info,
    png_exif_chunk,
    tiff_info,
    tifffile_exif,
)

# .jfif/.jpe: JPEGs as Windows and browsers often save them; .avif: recent Android phones'
# and browsers' photos (Pillow 11.3+ reads and writes it); .jp2: JPEG 2000 (OpenJPEG).
IMAGE_SUFFIXES = (
    ".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".avif", ".jp2",
    ".ppm", ".pgm", ".heic", ".heif",
)  # fmt: skip
HEIF_SUFFIXES = (".heic", ".heif")  # phones' photos: read and written with the heic extra

# Rec. 709 luma weights (R, G, B): a grayscale input's output back to grey here; brightness
# statistics in well_exposed.py (linear light), temporal.py and calib/frames.py (values as
# stored). GT-mean PSNR keeps Rec. 601's (sllen.metrics.gt_mean.LUMA), as the papers do.
REC709_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

# Pillow formats that hold no alpha channel: it is dropped for them (JPEG refuses LA and RGBA,
# BMP and PPM refuse LA), as the JPEG writer always did.
_NO_ALPHA_FORMATS = ("JPEG", "BMP", "DIB", "PPM", "PCX")


class ImageError(InputError):
    """A file that is not a readable image, or an output that cannot be written."""


class FramesDroppedWarning(UserWarning):
    """An animated WebP or PNG, or a multi-page TIFF: its first frame alone is enhanced."""


def _warn_frames(path: Path, n: int) -> None:
    # Said, not silent: the output has one frame where the file had n (a .gif is enhanced
    # as a video instead; these formats have no such path yet).
    if n > 1:
        warnings.warn(
            f"{path}: {n} frames (an animation or pages): only the first is enhanced and written",
            FramesDroppedWarning,
            stacklevel=4,
        )


@dataclass
class Picture:
    """An image as float RGB for the network, plus what is needed to write it back alike."""

    rgb: np.ndarray  # float32 HxWx3 in [0, 1]
    gray: bool = False  # the file had one channel: write one channel back
    alpha: np.ndarray | None = None  # HxW in the file's own dtype, written back unchanged
    bits: int = 8  # 8 or 16 bits per channel in the file
    format: str = "PNG"  # Pillow format name of the source
    info: dict[str, Any] = field(default_factory=dict)  # exif, icc_profile, dpi, lossless

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]


def _png_is_16bit_color(path: Path) -> bool:
    """Whether a PNG is 16-bit RGB, RGBA or grey+alpha, the modes Pillow reads as 8-bit
    (IHDR: bit depth at byte 24, colour type at 25; 16-bit grey, type 0, is Pillow's I;16)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    depth, color = struct.unpack(">BB", head[24:26])
    return depth == 16 and color in (2, 4, 6)


def _from_array(arr: np.ndarray, fmt: str, info: dict[str, Any]) -> Picture:
    """uint8/uint16 HxW, HxWx1..4 -> Picture."""
    bits = 16 if arr.dtype == np.uint16 else 8
    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"unsupported sample type {arr.dtype}")
    scale = 65535.0 if bits == 16 else 255.0
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    alpha = None
    if arr.ndim == 3 and arr.shape[2] in (2, 4):  # LA / RGBA: alpha is kept as it was
        alpha = arr[..., -1].copy()
        arr = arr[..., :-1]
        if arr.shape[2] == 1:
            arr = arr[..., 0]
    gray = arr.ndim == 2
    f = arr.astype(np.float32) / scale
    rgb = np.repeat(f[..., None], 3, axis=2) if gray else f
    return Picture(np.ascontiguousarray(rgb), gray, alpha, bits, fmt, info)


def read_picture(path: str | os.PathLike[str]) -> Picture:
    """Read any common image file; one-line errors for missing, empty or non-image files."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    suffix = path.suffix.lower()
    kind = _sniff(path)
    if suffix in HEIF_SUFFIXES or kind == "heif":  # by content too: an iPhone photo renamed .jpg
        _register_heif(path, "reading")
    if suffix == ".avif":
        _check_avif(path)
    try:
        if suffix == ".png" and _png_is_16bit_color(path):
            import png  # pypng: Pillow would truncate 48/64-bit PNGs to 8 bits

            width, height, rows, meta = png.Reader(filename=str(path)).asDirect()
            planes = meta["planes"]
            arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
            arr = arr.reshape(height, width, planes)
            return _from_array(*_with_exif(path, arr, "PNG", pillow_info(path)))
        if suffix in (".tif", ".tiff"):
            tiff = _read_tiff(path)
            if tiff is not None:
                return _from_array(*_with_exif(path, *tiff))
        return _read_pillow(path)
    except ImageError:
        raise
    except ImportError as e:
        msg = f"{path}: reading this image needs {e.name} ({install_hint('run')})"
        raise ImageError(msg) from None
    except Exception as e:  # Pillow/pypng raise many types for a corrupt file
        if type(e).__name__ == "DecompressionBombError":  # a real 180 MP panorama, too
            found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(e))
            size = (
                f"{int(found[1]) / 1e6:.0f} megapixels, over the {int(found[2]) / 1e6:.0f} MP"
                if found
                else "over the"
            )
            raise ImageError(
                f"{path}: too large to open ({size} limit of Pillow, a guard against "
                "decompression bombs); split it into parts"
            ) from None
        if kind == "video":
            raise ImageError(
                f"{path}: a video file without a video suffix: name it as one "
                "(.mp4, .mov, .mkv, .webm)"
            ) from None
        raise ImageError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def _with_exif(
    path: Path, arr: np.ndarray, fmt: str, info: dict[str, Any]
) -> tuple[np.ndarray, str, dict[str, Any]]:
    """Pixels that pypng or tifffile read, turned as the header's EXIF orientation says, and
    that EXIF (less the rotation, now applied) kept in ``info``, as Pillow's path does."""
    orientation, exif = header_exif(path)
    if exif is not None:
        info = {**info, "exif": exif}
    return orient(arr, orientation), fmt, info


def _read_tiff(path: Path) -> tuple[np.ndarray, str, dict[str, Any]] | None:
    """16-bit and float TIFFs through tifffile, with their metadata (None: let Pillow read
    8-bit ones). Float samples are taken as already in [0, 1], as Pillow's mode F below, and
    kept at 16 bits (Pillow reads float RGB not at all)."""
    try:
        import tifffile
    except ImportError:
        return None
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        if page.dtype is None or not (page.dtype == np.uint16 or page.dtype.kind == "f"):
            # 8-bit (or other) samples: Pillow's, before any decoding here (an LZW or JPEG
            # TIFF needs imagecodecs in tifffile, which Pillow does without)
            return None
        arr = page.asarray()  # not tif.asarray(): a multi-page file stacks its pages
        pages = len(tif.series[0].pages)  # pages alike; not a thumbnail
        cmyk = page.photometric == tifffile.PHOTOMETRIC.SEPARATED
        planar = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and page.samplesperpixel > 1
        info = tiff_info(page.tags)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.round(np.clip(np.nan_to_num(arr), 0.0, 1.0) * 65535.0).astype(np.uint16)
    _warn_frames(path, pages)
    if planar and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) storage
    if cmyk and arr.ndim == 3 and arr.shape[2] >= 4:
        # the plain, profile-free CMYK -> RGB, at 16 bits (K would otherwise be read as alpha)
        c, m, y, k = (arr[..., i].astype(np.float64) / 65535.0 for i in range(4))
        rgb = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], axis=2)
        arr = np.round(rgb * 65535.0).astype(np.uint16)
    return arr, "TIFF", info


def _to_rgb(im: Any, icc: bytes | None) -> Any:
    """A CMYK (YCbCr, LAB, ...) image as sRGB, through its own ICC profile where it has one
    that ImageCms can use, else Pillow's plain conversion."""
    if icc and im.mode == "CMYK":
        try:  # Pillow without littleCMS has no ImageCms: the plain conversion then
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(im, source, srgb, outputMode="RGB")
        except Exception:  # PyCMSError, a broken profile: the plain conversion then
            pass
    return im.convert("RGB")


def _webp_is_lossless(path: Path) -> bool:
    """Whether a WebP holds a lossless (VP8L) picture: its top-level RIFF chunks name the
    codec, and Pillow does not say. Written back lossy, a screenshot or an exported
    lossless frame would lose what its maker chose to keep."""
    with open(path, "rb") as f:
        f.seek(12)  # after "RIFF" size "WEBP"
        while len(head := f.read(8)) == 8:  # VP8X, ICCP, ANIM ... come before the image
            kind, size = head[:4], struct.unpack("<I", head[4:])[0]
            if kind in (b"VP8L", b"VP8 "):
                return kind == b"VP8L"
            if kind == b"ANMF":  # an animation's frame: its image chunk follows its header
                f.seek(16, 1)
                continue
            f.seek(size + (size & 1), 1)  # chunks are padded to an even length
    return False


def _frames(im: Any) -> int:
    """An animation's frames or a TIFF's pages of the first one's size. A JPEG's second
    picture (MPO: a camera's preview or depth map) and a TIFF's thumbnail are not frames."""
    if im.format not in ("WEBP", "PNG", "TIFF"):
        return 1
    try:
        count = int(getattr(im, "n_frames", 1))
        if im.format != "TIFF" or count < 2:
            return count
        size, n = im.size, 0
        for i in range(count):
            im.seek(i)
            n += im.size == size
        im.seek(0)
        return n
    except Exception:  # a broken next-page pointer: the first page reads, as it always did
        with contextlib.suppress(Exception):
            im.seek(0)
        return 1


def _read_pillow(path: Path) -> Picture:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        _warn_frames(path, _frames(im))  # before load(): counting TIFF pages seeks
        im.load()
        fmt = im.format or "PNG"
        info = header_info(im.info)
        if fmt == "WEBP" and _webp_is_lossless(path):
            info["lossless"] = True  # sllen's own key: _save writes it lossless again
        # Phones store the rotation in EXIF: apply it, then drop the tag (it is now applied).
        exif_tags = im.getexif()
        upright = ImageOps.exif_transpose(im)  # before kept_exif drops the tag it goes by
        _, exif = kept_exif(exif_tags)
        im = upright
        if exif is not None:
            info["exif"] = exif
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im)
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        elif mode in ("L", "LA", "RGB", "RGBA"):
            arr = np.asarray(im)
        elif mode == "1":
            arr = np.asarray(im.convert("L"))
        elif mode == "F":  # 32-bit float samples, taken as already in [0, 1]
            arr = np.round(np.clip(np.asarray(im), 0.0, 1.0) * 65535.0).astype(np.uint16)
        elif mode in ("P", "PA"):
            has_alpha = "transparency" in im.info or mode == "PA"
            arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
        else:  # CMYK, YCbCr, LAB, ...: enhance in sRGB; their profile no longer applies
            arr = np.asarray(_to_rgb(im, info.pop("icc_profile", None)))
    return _from_array(np.array(arr), fmt, info)


def to_file_array(pic: Picture, rgb: np.ndarray) -> np.ndarray:
    """Enhanced float RGB HxWx3 -> the source's layout and sample type."""
    scale = 65535.0 if pic.bits == 16 else 255.0
    dtype = np.uint16 if pic.bits == 16 else np.uint8
    values = rgb @ REC709_LUMA if pic.gray else rgb
    arr = np.clip(values * scale + 0.5, 0, scale).astype(dtype)
    if pic.alpha is not None and pic.alpha.shape == arr.shape[:2]:
        arr = np.concatenate([arr if arr.ndim == 3 else arr[..., None], pic.alpha[..., None]], 2)
    return arr


def write_picture(
    path: str | os.PathLike[str], pic: Picture, rgb: np.ndarray, *, quality: int = 95
) -> Path:
    """Write `rgb` (float HxWx3 in [0,1]) like `pic` was stored, atomically (temp + rename)."""
    path = Path(path)
    arr = to_file_array(pic, rgb)
    return _atomic(path, lambda tmp: _save(tmp, path.suffix.lower(), arr, pic, quality))


# The largest side each format's encoder takes (libjpeg's JPEG_MAX_DIMENSION, libwebp's
# WEBP_MAX_DIMENSION): known from the input's header, so a run refuses before inference.
_MAX_SIDE = {".jpg": 65500, ".jpeg": 65500, ".jpe": 65500, ".jfif": 65500, ".webp": 16383}


def check_output_size(path: str | os.PathLike[str], width: int, height: int) -> None:
    """Refuse an output whose format cannot hold a `width` x `height` picture."""
    path = Path(path)
    limit = _MAX_SIDE.get(path.suffix.lower())
    if limit is not None and max(width, height) > limit:
        raise ImageError(
            f"{path}: {width}x{height} is over {path.suffix.lower()[1:].upper()}'s limit of "
            f"{limit} pixels a side: write .png or .tif instead (-o NAME.png)"
        )


def write_rgb8(path: str | os.PathLike[str], rgb8: np.ndarray, *, quality: int = 95) -> Path:
    """Write a uint8 HxWx3 (or HxW) array, format from the suffix, atomically."""
    path = Path(path)
    pic = Picture(np.zeros((1, 1, 3), np.float32), format="")
    return _atomic(path, lambda tmp: _save(tmp, path.suffix.lower(), rgb8, pic, quality))


def _atomic(path: Path, save: Any) -> Path:
    if path.suffix.lower() in HEIF_SUFFIXES:
        _register_heif(path, "writing")
    try:  # the temporary file keeps the suffix: tifffile and pypng go by the name they get
        return atomic_write(path, save, suffix=path.suffix)
    except ImageError:
        raise
    except OSError as e:
        raise ImageError(f"{path}: cannot write ({e.strerror or e})") from None
    except ValueError as e:  # a writer refusing this image (tifffile, Pillow): this file only
        raise ImageError(f"{path}: cannot write ({type(e).__name__}: {e})") from None


# Pillow's JPEG writer refuses an EXIF block over one APP1 marker: the picture goes without.
_JPEG_MAX_EXIF = 65533


# ISO-BMFF major brands ("ftyp" box, bytes 8-12): HEIF stills, and MP4/QuickTime video
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_VIDEO_BRANDS = {
    b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"avc1", b"3gp4", b"3gp5", b"3g2a",
    b"MSNV", b"XAVC", b"f4v ",
}  # fmt: skip
_EBML = b"\x1a\x45\xdf\xa3"  # Matroska / WebM


def _sniff(path: Path) -> str | None:
    """What the file's first bytes say it is, whatever its name: "heif", "video" or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return None
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS and b"avif" not in head:  # mif1 with avif: Pillow's own AVIF
            return "heif"
        return "video" if brand in _VIDEO_BRANDS else None
    return "video" if head.startswith(_EBML) else None


def _register_heif(path: Path, doing: str) -> None:
    """Pillow reads and writes HEIC (an iPhone's photos) through pillow-heif, a plugin it
    registers; libheif also applies the file's rotation on reading and resets its EXIF tag, so
    the rotation is applied once, as for a JPEG."""
    try:
        import pillow_heif
    except ImportError:
        raise ImageError(
            f"{path}: {doing} HEIC/HEIF needs pillow-heif: {install_hint('heic')}"
        ) from None
    pillow_heif.register_heif_opener()


def _check_avif(path: Path) -> None:
    """Pillow reads AVIF from 11.3 on (sllen accepts Pillow 10): say so, not "unidentified"."""
    from PIL import features

    if not features.check("avif"):
        raise ImageError(f"{path}: reading AVIF needs Pillow 11.3 or newer: pip install -U pillow")


def _save(tmp: Path, suffix: str, arr: np.ndarray, pic: Picture, quality: int) -> None:
    from PIL import Image

    fmt = Image.registered_extensions().get(suffix)
    if fmt in _NO_ALPHA_FORMATS and arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., :-1] if arr.shape[2] == 4 else arr[..., 0]
    if suffix == ".pgm" and arr.ndim == 3:  # a .pgm is grey by definition
        top = 65535 if arr.dtype == np.uint16 else 255
        arr = np.clip(arr[..., :3] @ REC709_LUMA + 0.5, 0, top).astype(arr.dtype)
    exif = pic.info.get("exif")
    if arr.dtype == np.uint16:
        if suffix in (".tif", ".tiff"):
            _save_tiff16(tmp, arr, pic.info)
            return
        if suffix == ".png" and arr.ndim == 3:
            _save_png16(tmp, arr, pic.info)
            return
        if suffix == ".png":  # 16-bit greyscale: Pillow's I;16 (exif: an eXIf before IDAT)
            keys = ("icc_profile", "dpi", "exif")
            kwargs16 = {k: v for k, v in pic.info.items() if k in keys}
            Image.fromarray(arr).save(tmp, format="PNG", **kwargs16)
            return
        arr = (arr >> 8).astype(np.uint8)  # a 16-bit source written to an 8-bit-only format
    im = Image.fromarray(arr)
    kwargs: dict[str, Any] = {k: v for k, v in pic.info.items() if k in ("icc_profile", "dpi")}
    if fmt == "JPEG":
        kwargs.update(quality=quality, subsampling=0 if quality >= 90 else 2)
        if exif is not None and len(exif) > _JPEG_MAX_EXIF:
            exif = None
    elif fmt == "WEBP" and pic.info.get("lossless"):
        kwargs["lossless"] = True  # quality would be the compression effort there
    elif fmt in ("WEBP", "HEIF", "AVIF"):
        kwargs["quality"] = quality
    # Pillow's TIFF writer takes exif= too (IFD0 tags, Exif and GPS sub-IFDs; Pillow 13)
    if exif is not None and fmt in ("JPEG", "WEBP", "PNG", "TIFF", "HEIF", "AVIF"):
        kwargs["exif"] = exif
    im.save(tmp, format=fmt, **kwargs)


def _save_tiff16(tmp: Path, arr: np.ndarray, info: dict[str, Any]) -> None:
    """16-bit TIFF through tifffile: grey, grey+alpha, RGB or RGBA (alpha unassociated, as
    it came), with the source's ICC profile, resolution and EXIF (see tifffile_exif)."""
    import tifffile

    extra, sub_ifds = tifffile_exif(info.get("exif"), arr.nbytes)
    if "icc_profile" in info:
        extra["iccprofile"] = info["icc_profile"]
    if "dpi" in info:
        extra.update(resolution=tuple(info["dpi"]), resolutionunit="INCH")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    photometric = "minisblack" if channels in (1, 2) else "rgb"
    if channels in (2, 4):
        extra["extrasamples"] = ["unassalpha"]
    tifffile.imwrite(tmp, arr, photometric=photometric, **extra)
    if sub_ifds:
        append_sub_ifds(tmp, info["exif"], sub_ifds)


def _save_png16(tmp: Path, arr: np.ndarray, info: dict[str, Any]) -> None:
    """48/64-bit and 16-bit grey+alpha PNG through pypng, with the source's pHYs, iCCP and
    eXIf chunks (pypng writes pHYs itself; iCCP is spliced in after IHDR and eXIf before the
    first IDAT, where Pillow's own PNG writer puts them)."""
    import png

    h, w, c = arr.shape
    mode = {3: "RGB;16", 4: "RGBA;16", 2: "LA;16"}[c]
    meta: dict[str, Any] = {}
    if "dpi" in info:
        x, y = (round(d / 0.0254) for d in info["dpi"])  # dots per inch -> per metre
        meta.update(x_pixels_per_unit=x, y_pixels_per_unit=y, unit_is_meter=True)
    buf = io.BytesIO()
    png.from_array(arr.reshape(h, w * c), mode, info=meta).write(buf)
    chunks = list(png.Reader(bytes=buf.getvalue()).chunks())
    if "icc_profile" in info:
        iccp = b"ICC profile\0\0" + zlib.compress(info["icc_profile"])
        chunks.insert(1, (b"iCCP", iccp))
    if info.get("exif"):
        first_idat = next(i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT")
        chunks.insert(first_idat, (b"eXIf", png_exif_chunk(info["exif"])))
    with open(tmp, "wb") as f:
        png.write_chunks(f, chunks)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """``path`` as float32 HxWx3 RGB in [0, 1] (16-bit files keep their precision)."""
    return read_picture(path).rgb


def to_uint8(img: np.ndarray) -> np.ndarray:
    """uint8 passes through; floats are clipped to [0, 1] and rounded to 0..255."""
    if img.dtype == np.uint8:
        return img
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"expected a float or uint8 image, got dtype {img.dtype}")
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_image(path: str | os.PathLike[str], img: np.ndarray, quality: int = 95) -> Path:
    """A float or uint8 image (HxWx3, HxWx1 or HxW) as 8 bits, format from the suffix,
    atomically; missing parent folders are created. ``quality``: JPEG and WebP."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() in HEIF_SUFFIXES:
        _register_heif(path, "writing")
    if Image.registered_extensions().get(path.suffix.lower()) is None:
        raise InputError(f"{path}: unknown image suffix {path.suffix!r}")
    data = to_uint8(np.asarray(img))
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    if not (data.ndim == 2 or (data.ndim == 3 and data.shape[2] == 3)):
        raise InputError(f"expected an HxWx3 or HxW image, got shape {data.shape}")
    return write_rgb8(path, data, quality=quality)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder`` (suffix in IMAGE_SUFFIXES, any case), sorted.

    Hidden files are skipped: archives unpacked on macOS carry "._name.png" resource forks.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: not a folder")
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
