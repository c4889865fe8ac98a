"""Pack a paired image folder into lossless tar chunks for a machine reached by small copies.

    python scripts/gpu/pack_pairs.py LOL/our485 OUT --chunk-mib 45 [--extra W.safetensors]

For a GPU machine that can only be sent a few tens of MiB at a time (the project's device tool
takes 64 MiB a call, the repository included): every 8-bit image of ``SRC/low`` and
``SRC/high`` (or ``normal``) is re-encoded as lossless WebP (LOL's our485: 324 MB of PNG ->
269 MB), read back and compared pixel by pixel with the original, and the files are packed into
``OUT/p1.tar, p2.tar, ...`` of at most ``--chunk-mib`` each, under ``<SRC name>/low/`` and
``<SRC name>/high/``; ``--extra`` files (starting weights) go first, at the top level. Images
that WebP cannot hold exactly as sllen reads them (16-bit, alpha) are packed as they are;
EXIF orientation is applied to the pixels. OUT must not hold chunks already. On the other side,
``tar -xf pK.tar -C DIR`` for each chunk gives ``DIR/<SRC name>`` for ``sllen-train --lle-data``
(sllen reads .webp). Used 2026-12-04 to train on LOL on an H200: docs/reproduce.md.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from sllen.data.pair_layouts import pair_folder
from sllen.runtime.errors import InputError
from sllen.runtime.files import AtomicFile
from sllen.runtime.images import read_image, read_picture, to_uint8

_BLOCK = tarfile.BLOCKSIZE


def webp_lossless(path: Path, scratch: Path) -> bytes | None:
    """The image as lossless WebP, or None when WebP cannot hold it exactly as sllen reads it
    (16 bits, alpha, a size over WebP's limit): judged with sllen's own reader, which is what
    training sees (EXIF orientation applied, 16-bit kept)."""
    try:
        picture = read_picture(path)
        if picture.bits != 8 or picture.alpha is not None:
            return None
        buf = io.BytesIO()
        Image.fromarray(to_uint8(picture.rgb)).save(
            buf, "WEBP", lossless=True, quality=100, method=4, exact=True
        )
        back = scratch / "check.webp"
        back.write_bytes(buf.getvalue())
        if not np.array_equal(read_image(back), picture.rgb):
            return None
        return buf.getvalue()
    except (ValueError, OSError):  # Pillow cannot encode it: the original goes as it is
        return None


def _member_size(name: str, size: int) -> int:
    """Bytes a member takes in a GNU tar: its header(s), long-name blocks included, and data."""
    info = tarfile.TarInfo(name)
    info.size = size
    header = info.tobuf(tarfile.GNU_FORMAT, tarfile.ENCODING, "surrogateescape")
    return len(header) + -(-size // _BLOCK) * _BLOCK


def _archive_size(used: int) -> int:
    """The file size of a tar whose members take ``used`` bytes: two zero blocks at the end,
    the whole padded to tarfile's record size."""
    return -(-(used + 2 * _BLOCK) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def pack(src: Path, out: Path, chunk_mib: float, extras: list[Path]) -> list[Path]:
    if not (math.isfinite(chunk_mib) and chunk_mib > 0):
        raise InputError(f"--chunk-mib must be a finite number > 0, not {chunk_mib}")
    if out.is_dir() and any(out.glob("p*.tar")):
        raise InputError(f"{out} already holds chunks (p*.tar): give an empty folder")
    names = [p.name for p in extras]
    if len(set(names)) != len(names):
        raise InputError(f"two --extra files share a name: {', '.join(names)}")
    pairs = pair_folder(src)
    members: list[tuple[str, bytes]] = [(p.name, p.read_bytes()) for p in extras]
    with tempfile.TemporaryDirectory() as scratch:
        for pair in pairs:
            for side, path in (("low", pair.low), ("high", pair.high)):
                data = webp_lossless(path, Path(scratch))
                name = f"{pair.name}.webp" if data is not None else path.name
                members.append((f"{src.name}/{side}/{name}", data or path.read_bytes()))
    limit = int(chunk_mib * 2**20)
    chunks: list[list[tuple[str, bytes]]] = [[]]
    used = 0
    for name, data in members:
        need = _member_size(name, len(data))
        if _archive_size(need) > limit:
            raise InputError(f"{name}: {len(data)} bytes do not fit a {chunk_mib} MiB chunk")
        if _archive_size(used + need) > limit:
            chunks.append([])
            used = 0
        chunks[-1].append((name, data))
        used += need
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, chunk in enumerate(chunks, 1):
        target = out / f"p{i}.tar"
        # Never a half-written chunk under its final name: sllen's own atomic writer.
        with AtomicFile(target) as tmp:
            with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
                for name, data in chunk:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            if tmp.stat().st_size > limit:  # the sizing above is exact; this is the proof
                raise InputError(f"{target}: {tmp.stat().st_size} bytes, over {limit}")
        written.append(target)
        print(f"{target}: {len(chunk)} files, {target.stat().st_size / 2**20:.1f} MiB")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="a folder with low/ and high/ (or normal/)")
    ap.add_argument("out", type=Path, help="where p1.tar, p2.tar, ... go")
    ap.add_argument("--chunk-mib", type=float, default=45.0)
    ap.add_argument("--extra", type=Path, action="append", default=[], help="a file to add")
    args = ap.parse_args(argv)
    try:
        for p in args.extra:
            if not p.is_file():
                raise InputError(f"{p}: no such file")
        pack(args.src, args.out, args.chunk_mib, args.extra)
    except (InputError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
