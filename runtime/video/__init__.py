"""Video files in and out with PyAV: probe, decode to RGB frames, encode with audio copied.

What a user gets (docs/video.md says the same at more length):

- Frames come out as uint8 HxWx3 RGB in the stream's coded orientation, with their
  presentation timestamps (``pts`` in the stream's ``time_base``). A rotation in the
  container's display matrix is reported by :func:`probe` and written back by
  :class:`VideoWriter`, so players show the output the way they showed the input.
- YUV <-> RGB uses the matrix the input is tagged with (BT.709 for untagged HD, BT.601 for
  untagged SD, as players assume), in both directions, and the output is tagged with it, so
  colours survive the round trip.
- A file that stops decoding part-way (cut off during a copy, a camera that lost power) keeps
  the frames that did decode: iteration ends early, a :class:`VideoWarning` says how many
  frames came out of how many the container promised, and ``reader.truncated`` is set
  (``strict=True`` raises :class:`VideoError` instead). A file with no decodable frame at all
  is an error.
- :class:`VideoWriter` writes a temporary file beside the target and renames it on a clean
  close; an exception or Ctrl-C deletes it, so no half-written video is ever left behind.
  Timestamps, frame count, frame rate, size and pixel aspect ratio are kept, and so are the
  container's tags (creation time, location, ...) in a file; audio is copied packet for packet
  (re-encoded only when the output container cannot hold the input's audio codec). 4:2:0 and
  4:2:2 need even sizes: an odd width or height is padded by one replicated pixel column/row
  (4:4:4, ``pix_fmt="yuv444p"`` or ``sllen-run --pix-fmt yuv444p``, keeps the size).
- Of several video streams the largest picture is read; the others, and subtitle, data and
  attachment streams, are left out with a :class:`VideoWarning` each.

The modules: ``common`` (VideoError, VideoWarning, VideoInfo, Frame, PyAV access, file checks),
``reader`` (probe, VideoReader, read_frames), ``writer`` (VideoWriter, published through
:class:`sllen.runtime.files.AtomicFile`), ``audio`` (the audio copy the writer drives) and
``containers`` (which output container holds which codec).
Import from the package; the modules are its layout, not its interface.
"""

from sllen.runtime.video.common import DEFAULT_FPS, Frame, VideoError, VideoInfo, VideoWarning
from sllen.runtime.video.reader import VideoReader, probe, read_frames
from sllen.runtime.video.writer import VideoWriter

__all__ = [
    "DEFAULT_FPS",
    "Frame",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "VideoWarning",
    "VideoWriter",
    "probe",
    "read_frames",
]
