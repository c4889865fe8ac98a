"""Pack a paired image folder into lossless tar chunks for a machine reached by small copies.

    python scripts/gpu/pack_pairs.py LOL/our485 OUT --chunk-mib 45 [--extra W.safetensors]

For a GPU machine that can only be sent a few tens of MiB at a time (the project's device tool
takes 64 MiB a call, the repository included): every 8-bit image of ``SRC/low`` and
``SRC/high`` (or ``normal``) is re-encoded as lossless WebP (LOL's our485: 324 MB of PNG ->
269 MB), read back and compared pixel by pixel with the original, and the files are packed into
``OUT/p1.tar, p2.tar, ...`` of at most ``--chunk-mib`` each, under ``<SRC name>/low/`` and
``<SRC name>/high/``; ``--extra`` files (starting weights) go first, at the top level. Images
that WebP cannot hold exactly (16-bit, alpha) are packed as they are. On the other side,
``tar -xf pK.tar -C DIR`` for each chunk gives ``DIR/<SRC name>`` for ``sllen-train --lle-data``
(sllen reads .webp). Used 2026-12-04 to train on LOL on an H200: docs/reproduce.md.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from sllen.data.pair_layouts import pair_folder
from sllen.runtime.errors import InputError

_TAR_BLOCK = 512


def webp_lossless(path: Path) -> bytes | None:
    """The image as lossless WebP, or None when WebP cannot hold it exactly."""
    with Image.open(path) as im:
        if im.mode not in ("RGB", "L", "P"):
            return None  # 16-bit, alpha, CMYK: keep the original bytes
        rgb = im.convert("RGB")
    buf = io.BytesIO()
    rgb.save(buf, "WEBP", lossless=True, quality=100, method=4, exact=True)
    with Image.open(io.BytesIO(buf.getvalue())) as back:
        if not np.array_equal(np.asarray(back.convert("RGB")), np.asarray(rgb)):
            return None
    return buf.getvalue()


def _tar_size(size: int) -> int:
    return _TAR_BLOCK + -(-size // _TAR_BLOCK) * _TAR_BLOCK  # header + padded data


def pack(src: Path, out: Path, chunk_mib: float, extras: list[Path]) -> list[Path]:
    pairs = pair_folder(src)
    members: list[tuple[str, bytes]] = [(p.name, p.read_bytes()) for p in extras]
    for pair in pairs:
        for side, path in (("low", pair.low), ("high", pair.high)):
            data = webp_lossless(path)
            name = f"{pair.name}.webp" if data is not None else path.name
            members.append((f"{src.name}/{side}/{name}", data or path.read_bytes()))
    cap = int(chunk_mib * 2**20) - 2 * 10 * _TAR_BLOCK  # the end-of-archive blocks, rounded up
    chunks: list[list[tuple[str, bytes]]] = [[]]
    used = 0
    for name, data in members:
        need = _tar_size(len(data))
        if need > cap:
            raise InputError(f"{name}: {len(data)} bytes do not fit a {chunk_mib} MiB chunk")
        if used + need > cap:
            chunks.append([])
            used = 0
        chunks[-1].append((name, data))
        used += need
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, chunk in enumerate(chunks, 1):
        target = out / f"p{i}.tar"
        fd, tmp = tempfile.mkstemp(dir=out, suffix=".tar.tmp")
        os.close(fd)
        with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
            for name, data in chunk:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, target)  # never a half-written chunk under its final name
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
