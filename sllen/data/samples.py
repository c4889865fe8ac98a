"""A ready-made paired folder of generated scenes and their synthetic low-light versions.

``write_sample_pairs(out, count, (height, width), seed)`` writes ``out/high/0000.png`` (a
procedural scene), ``out/low/0000.png`` (synthesize_low of it, default SynthesisParams) and so
on, plus ``out/synthesis.json`` with each pair's darkening parameters. Pair i comes from
``item_rng(seed, i)``, so the folder is reproducible and any pair can be regenerated alone.
The result is a generic low/high folder: evaluation and PairedFolder read it directly.
numpy and Pillow only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sllen.runtime.errors import InputError
from sllen.runtime.images import write_image

from .scenes import generate_scene
from .seeding import item_rng
from .synthesis import SynthesisParams, synthesize_low


def write_sample_pairs(
    out: str | os.PathLike[str],
    count: int,
    size: tuple[int, int],
    seed: int = 0,
    cfg: SynthesisParams | None = None,
) -> Path:
    """Write ``count`` pairs of ``size`` = (height, width) into ``out``; returns ``out``."""
    if count < 1:
        raise InputError(f"--count must be >= 1, got {count}")
    out = Path(out)
    names = {f"{i:04d}.png" for i in range(count)}
    stale = [p for sub in ("low", "high") if (out / sub).is_dir() for p in (out / sub).iterdir()]
    stale = [p for p in stale if p.name not in names]
    if stale:  # they would sit beside the new pairs as if they were some of them
        raise InputError(
            f"{out} already holds other files in low/ or high/ ({stale[0].name}, ...): "
            "name a new folder"
        )
    params = {}
    for i in range(count):
        rng = item_rng(seed, i)
        high, _ = generate_scene(rng, *size)
        low, params[f"{i:04d}"] = synthesize_low(high, rng, cfg)
        write_image(out / "high" / f"{i:04d}.png", high)
        write_image(out / "low" / f"{i:04d}.png", low)
    (out / "synthesis.json").write_text(json.dumps({"seed": seed, "pairs": params}, indent=1))
    return out
