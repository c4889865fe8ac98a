"""Sample media that ships with sllen, for trying the runtime without any data.

``dark-pan.mp4``: a 4-second low-light clip, 60 frames at 15 fps, 320x240 (``SAMPLE_CLIP_SIZE``
is (height, width)), H.264 in MP4. A camera pans and zooms slowly over a procedural scene while
two objects cross the frame; every frame is darkened by the project's low-light synthesis
(exposure 0.08 with a light map, fixed for the clip; fresh Poisson-Gaussian sensor noise in
every frame). It is made by ``scripts/make_sample_clip.py`` (``sllen.data.clip``), from seed 0:
its frames regenerate exactly (its bytes too, with the same PyAV/FFmpeg build); the command is
in the file's ``comment`` metadata.

``sample_clip()`` returns its path. Nothing here imports torch or PyAV.
"""

from __future__ import annotations

from pathlib import Path

from sllen.runtime.errors import MissingFileError, install_hint

SAMPLE_CLIP_NAME = "dark-pan.mp4"
SAMPLE_CLIP_SEED = 0
SAMPLE_CLIP_FRAMES = 60
SAMPLE_CLIP_FPS = 15
SAMPLE_CLIP_SIZE = (240, 320)  # (height, width)
SAMPLE_CLIP_CRF = 24


def sample_clip() -> Path:
    """The bundled dark sample clip's path; FileNotFoundError if it is not installed."""
    path = Path(__file__).resolve().parent / SAMPLE_CLIP_NAME
    if not path.is_file():
        raise MissingFileError(
            f"the sample clip {SAMPLE_CLIP_NAME} is missing from {path.parent} (a source "
            "checkout without it, or a package built without its package data); recreate it "
            "with `python scripts/make_sample_clip.py` (needs the video extra: "
            f"{install_hint('video')})"
        )
    return path
