"""The metadata that travels with a still image through sllen.runtime.images: ICC profile,
resolution, EXIF (rotation applied once, file-structure tags dropped) and how each writer
puts them back. Metadata never costs the pixels: whatever is odd here is left out.

EXIF is held as Pillow's ``Exif.tobytes()`` (b"Exif\\0\\0" + a TIFF header and IFD0 with its
Exif and GPS sub-IFDs), the form Pillow's JPEG, PNG, WebP and TIFF writers take.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ORIENTATION = 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825

# TIFF tags that describe how the source file stores its pixels, not the photograph: copied
# into another file's EXIF they are wrong (ImageWidth after a rotation, StripOffsets into a
# file that is not there). A blacklist, so that a camera's EXIF keeps everything else.
STRUCTURAL_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281}
    | {284, 288, 289, 290, 291, 292, 293, 317, 320, 321, 322, 323, 324, 325, 330, 332}
    | {333, 334, 336, 338, 339, 340, 341, 347, 530, 32997, 32998}
    | set(range(512, 522))  # old-style JPEG compression
    | {34675}  # ICC profile: travels as icc_profile
    | {34377, 37724}  # Photoshop resources and layers: per file, and too big for a JPEG
)

# IFD0's text tags that tifffile can write (ImageDescription, Make, Model, Software,
# DateTime, Artist, HostComputer, Copyright).
TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 316, 33432)


def pillow_info(path: Path) -> dict[str, Any]:
    """The ICC profile and resolution of a file whose pixels another reader takes (Pillow
    reads the header only). Anything odd gives ``{}``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            info = header_info(im.info)
    except Exception:
        return {}
    return rgb_profile_only(info)


def header_info(pillow: dict[str, Any]) -> dict[str, Any]:
    """The ICC profile and resolution of a file as Pillow opened it (its ``im.info``), less a
    resolution of 1 dpi or less: what Pillow reports for a TIFF that states none, and what
    writers put when they know none (written back, it sized a photo 640 inches wide)."""
    info: dict[str, Any] = {k: pillow[k] for k in ("icc_profile", "dpi") if k in pillow}
    dpi = info.get("dpi")
    if dpi is not None and not all(float(d) > 1 for d in dpi):
        del info["dpi"]
    return info


def tiff_info(tags: Any) -> dict[str, Any]:
    """A TIFF page's ICC profile (tag 34675) and resolution in dots per inch, as Pillow names
    them (``{}`` where they are missing or odd)."""
    info: dict[str, Any] = {}
    try:
        icc = tags.get("InterColorProfile")
        if icc is not None:
            info["icc_profile"] = bytes(icc.value)
        x, y, unit = (tags.get(n) for n in ("XResolution", "YResolution", "ResolutionUnit"))
        unit_code = int(unit.value) if unit is not None else 2
        if x is not None and y is not None and unit_code in (2, 3):
            fractions = (x.value, y.value)
            if all(den > 0 for _, den in fractions):
                per_inch = 2.54 if unit_code == 3 else 1.0  # 3: per centimetre
                dpi = tuple(per_inch * num / den for num, den in fractions)
                if all(d > 1 for d in dpi):  # 1/1 is what writers put when they know none
                    info["dpi"] = dpi
    except Exception:
        return {}
    return rgb_profile_only(info)


def rgb_profile_only(info: dict[str, Any]) -> dict[str, Any]:
    """Drop an ICC profile whose colour space (header bytes 16-20) is not RGB or grey: the
    output is RGB or grey, and a CMYK profile on it would misrender."""
    icc = info.get("icc_profile")
    if icc is not None and bytes(icc[16:20]) not in (b"RGB ", b"GRAY"):
        info = {k: v for k, v in info.items() if k != "icc_profile"}
    return info


def kept_exif(exif: Any) -> tuple[int, bytes | None]:
    """(orientation 1-8, the EXIF to keep or None) from a Pillow ``Exif``: the rotation is
    applied by the reader, so its tag goes, and so do the source file's structural tags.
    Call it while the file is open (Pillow reads the sub-IFDs lazily)."""
    try:
        orientation = int(exif.get(ORIENTATION, 1))
    except (TypeError, ValueError):
        orientation = 1
    for tag in list(exif):
        if tag in STRUCTURAL_TAGS or tag == ORIENTATION:
            del exif[tag]
    description = exif.get(270)
    if isinstance(description, str) and description.startswith('{"shape":'):
        del exif[270]  # tifffile's own JSON, about the source file's array
    orientation = orientation if 1 <= orientation <= 8 else 1
    try:
        return orientation, (exif.tobytes() if exif else None)
    except Exception:  # a tag Pillow cannot write back (or a sub-IFD it cannot read)
        return orientation, None


def header_exif(path: Path) -> tuple[int, bytes | None]:
    """(orientation, EXIF to keep) of a PNG (its eXIf chunk) or TIFF (IFD0 and its sub-IFDs)
    whose pixels pypng or tifffile read: the header only, never the pixel data."""
    from PIL import Image

    try:
        # unbuffered: the PNG scan seeks past each chunk, where a buffered file would read
        # the small image chunks whole (half of LOL's bytes for its size check)
        with open(path, "rb", buffering=0) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data": ignored alike
            exif = Image.Exif()
            if f.read(8) == b"\x89PNG\r\n\x1a\n":
                data = _png_chunk(f, b"eXIf")
                if data is None:
                    return 1, None
                exif.load(data)
            else:
                f.seek(0)
                exif.load_from_fp(f)
            return kept_exif(exif)
    except Exception:
        return 1, None


def _png_chunk(f: Any, kind: bytes) -> bytes | None:
    """The data of the first chunk of this kind, seeking past all others (IDAT included)."""
    while True:
        head = f.read(8)
        if len(head) < 8:
            return None
        length, name = struct.unpack(">I4s", head)
        if name == kind:
            return bytes(f.read(length))
        if name == b"IEND":
            return None
        f.seek(length + 4, 1)  # data and CRC


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """An HxW[xC] array as it is meant to be seen: EXIF orientation 1-8 applied exactly as
    PIL.ImageOps.exif_transpose does (its Transpose method named for each)."""
    if orientation == 2:  # FLIP_LEFT_RIGHT
        arr = arr[:, ::-1]
    elif orientation == 3:  # ROTATE_180
        arr = arr[::-1, ::-1]
    elif orientation == 4:  # FLIP_TOP_BOTTOM
        arr = arr[::-1]
    elif orientation == 5:  # TRANSPOSE
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:  # ROTATE_270 (counter-clockwise): 90 clockwise
        arr = np.rot90(arr, -1)
    elif orientation == 7:  # TRANSVERSE
        arr = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:  # ROTATE_90 (counter-clockwise)
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def png_exif_chunk(exif: bytes) -> bytes:
    """An eXIf chunk's data: the TIFF header and IFDs, without Pillow's b"Exif\\0\\0"."""
    return exif[6:] if exif.startswith(b"Exif\x00\x00") else exif


def tifffile_exif(exif: bytes | None, nbytes: int) -> tuple[dict[str, Any], list[int]]:
    """tifffile.imwrite arguments for this EXIF, and the sub-IFDs to append after it.

    tifffile writes IFD0 tags only: it has no way to write an Exif or GPS sub-IFD, and it
    filters their pointer tags (34665, 34853) out of extratags. So the text tags go in as
    extratags, and so do zero placeholders under the codes just below the pointers' (34664,
    34852: nothing sorts between, so IFD0 stays in tag order), which :func:`append_sub_ifds`
    renames and points at the sub-IFDs once the file is written. The byte order follows the
    EXIF's, for the sub-IFDs Pillow serialises to fit in as they are. ``nbytes``: the pixel
    data's size; above 2 GB tifffile may write a BigTIFF, where no sub-IFDs are appended.
    """
    from PIL import Image

    kwargs: dict[str, Any] = {"metadata": None}  # tifffile's JSON would take tag 270
    if not exif:
        return kwargs, []
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        kwargs["byteorder"] = ">" if png_exif_chunk(exif)[:2] == b"MM" else "<"
        extratags: list[tuple[int, str, int, Any, bool]] = []
        for tag in TIFF_TEXT_TAGS:
            value = parsed.get(tag)
            if isinstance(value, str) and value.strip("\0"):
                # TIFF text is 7-bit ASCII; Pillow's own EXIF writer replaces the rest alike
                text = value.replace("\0", "").encode("ascii", "replace").decode("ascii")
                if tag == 305:
                    kwargs["software"] = text  # else tifffile writes its own name there
                else:
                    extratags.append((tag, "s", 0, text, True))
        sub_ifds = [t for t in (EXIF_IFD, GPS_IFD) if t in parsed and nbytes < 2**31]
        if sub_ifds:
            _sub_ifd_blob(exif, 8)  # serialisable: else no placeholder that stays 0
        extratags += [(t - 1, "I", 1, 0, True) for t in sub_ifds]
    except Exception:
        return {"metadata": None}, []
    kwargs["extratags"] = extratags
    return kwargs, sub_ifds


def _sub_ifd_blob(exif: bytes, offset: int) -> bytes:
    """A directory holding only the Exif and GPS pointers, followed by those sub-IFDs, all
    serialised by Pillow for the file position ``offset``."""
    from PIL import Image

    only = Image.Exif()
    only.load(exif)
    for tag in list(only):
        if tag not in (EXIF_IFD, GPS_IFD):
            del only[tag]
    return only.tobytes(offset)[14:]  # b"Exif\0\0" and the 8-byte TIFF header


def append_sub_ifds(path: Path, exif: bytes, tags: list[int]) -> None:
    """Append the Exif/GPS sub-IFDs to a TIFF that tifffile wrote with placeholders for their
    pointers (:func:`tifffile_exif`), and turn each placeholder into its pointer. Where this
    fails the placeholders stay: unknown tags with value 0, which readers pass over."""
    try:
        with open(path, "r+b") as f:
            order = ">" if f.read(2) == b"MM" else "<"
            if struct.unpack(order + "H", f.read(2))[0] != 42:
                return  # BigTIFF: never asked for (see tifffile_exif)
            ifd0 = struct.unpack(order + "I", f.read(4))[0]
            end = f.seek(0, 2)
            end += end % 2  # IFDs start on a word boundary
            blob = _sub_ifd_blob(exif, end)
            f.seek(end)
            f.write(blob)
            f.seek(ifd0)
            count = struct.unpack(order + "H", f.read(2))[0]
            f.seek(ifd0)
            entries = _ifd_entries(f.read(2 + 12 * count), order)
            for tag, (_, offset) in _ifd_entries(blob, order).items():  # where Pillow put each
                if tag in tags and tag - 1 in entries:
                    f.seek(ifd0 + entries[tag - 1][0])
                    f.write(struct.pack(order + "HHII", tag, 4, 1, offset))  # LONG, 1 value
    except Exception:
        return


def _ifd_entries(data: bytes, order: str) -> dict[int, tuple[int, int]]:
    """{tag: (position of its entry, its 4-byte value field as a number)} of the classic TIFF
    directory that ``data`` starts with."""
    out = {}
    for i in range(struct.unpack_from(order + "H", data)[0]):
        tag, _, _, value = struct.unpack_from(order + "HHII", data, 2 + 12 * i)
        out[tag] = (2 + 12 * i, value)
    return out
