"""Which files a `sllen-run` command names, and where each one's result goes.

Inputs are files, folders (their images and videos, not their subfolders) and globs, each
taken once; outputs mirror the inputs' paths below their common folder, never replace an
input, and keep each image's format (videos keep their container where it holds the codec
they are written with: H.264 unless --codec says otherwise).
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sllen.runtime.errors import InputError, MissingFileError
from sllen.runtime.images import HEIF_SUFFIXES, IMAGE_SUFFIXES

VIDEO_SUFFIXES = (
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".gif", ".y4m", ".h264", ".h265", ".hevc",
)  # fmt: skip
# Containers H.264 (and copied audio) go into; other inputs are written as .mp4.
H264_CONTAINERS = (".mp4", ".mkv", ".mov", ".m4v")
DEFAULT_CODECS = ("libx264", "h264")  # the writer's H.264, whichever encoder the build has


class NoInputsError(InputError):
    """Nothing to enhance was found for the given inputs."""


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


class SkippedFilesWarning(UserWarning):
    """A folder held files sllen does not read: said, so a camera's raw files (or anything
    else) are not left out in silence."""


def media_in(folder: Path) -> list[Path]:
    """A folder's images and videos (not its subfolders, not hidden files), in name order;
    any other files are counted in a SkippedFilesWarning."""
    media: list[Path] = []
    other: Counter[str] = Counter()
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):  # "._x.jpg": macOS resource forks
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES or is_video(p):
            media.append(p)
        else:
            other[p.suffix.lower() or "without a suffix"] += 1
    if other:
        kinds = ", ".join(f"{n} {suffix}" for suffix, n in other.most_common())
        n = sum(other.values())
        warnings.warn(
            f"{folder}: skipped {n} file{'s' * (n > 1)} sllen does not read as images or "
            f"videos ({kinds})",
            SkippedFilesWarning,
            stacklevel=3,
        )
    return media


def collect_inputs(
    inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Files named by `inputs` (files, folders, globs), in order, each once.

    ``output``: the run's --output. A glob that reaches into that folder from outside it
    (``**/*.jpg -o bright``, run a second time) matched the earlier run's results, not
    inputs: they are left out, in one SkippedFilesWarning. A file named, or a folder or glob
    that starts inside the output folder, is the user's choice and stays (the overwrite
    check then refuses it)."""
    if not inputs:
        raise NoInputsError("no input given: name images, videos, folders or globs")
    out_dir = _output_dir(output)
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            media = media_in(path)
            if not media:
                # hidden ones (.git, .thumbnails) are no reason to suggest a recursive glob
                subfolders = any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())
                # escaped and quoted: a folder named "shots [raw]" is pasted into a shell
                pattern = shlex.quote(os.path.join(glob.escape(str(path)), "**", "*"))
                hint = (
                    f" (its subfolders are not searched: name them, or a glob such as {pattern})"
                    if subfolders
                    else ""
                )
                raise NoInputsError(f"{path}: no images or videos in this folder{hint}")
            found += media
        elif path.is_file():
            found.append(path)
        elif any(c in str(item) for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(item), recursive=True))
            files = [p for p in matches if p.is_file()]
            if not files:
                raise NoInputsError(f"{item}: no file matches this pattern")
            if out_dir is not None and not _inside(_glob_root(str(item)), out_dir):
                files = _outside_output(str(item), files, out_dir, Path(output or ""))
            found += files
        else:
            raise MissingFileError(f"{item}: no such file or folder")
    # Each once, by the path as named, not as resolved: two links to one file are two inputs,
    # named after the links (a folder of chosen shots linked from elsewhere).
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(Path(os.path.abspath(p)), p)
    return list(unique.values())


def _output_dir(output: str | os.PathLike[str] | None) -> Path | None:
    """The folder an --output names (None: none, or it names one result file)."""
    if output is None:
        return None
    path = Path(output)
    if path.suffix.lower() in MEDIA_SUFFIXES and not path.is_dir():
        return None  # -o night.jpg: a file, no folder of earlier results
    return path.resolve()


def _inside(path: Path, folder: Path) -> bool:
    """``path``, a folder or a file as named (a link is not followed to its target), lies
    in the resolved ``folder`` (resolved: -o ./bright, a linked output folder)."""
    named = path.resolve() if path.name in ("", "..") else path.parent.resolve() / path.name
    return named.is_relative_to(folder)


def _glob_root(pattern: str) -> Path:
    """The folder a glob starts from: its parts before the first with a wildcard."""
    parts = Path(pattern).parts
    literal = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    return Path(*parts[:literal]) if literal else Path(".")


def _outside_output(pattern: str, files: list[Path], out_dir: Path, shown: Path) -> list[Path]:
    """``files`` less those in the output folder ``out_dir`` (resolved; ``shown`` as given)."""
    kept = [p for p in files if not _inside(p, out_dir)]
    if not kept:
        raise NoInputsError(f"{pattern}: every match lies in the output folder {shown}")
    n = len(files) - len(kept)
    if n:
        warnings.warn(
            f"{pattern}: skipped {n} file{'s' * (n > 1)} in the output folder {shown} "
            "(results of an earlier run, not inputs)",
            SkippedFilesWarning,
            stacklevel=3,
        )
    return kept


MEDIA_SUFFIXES = (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES)


def is_file_output(sources: Sequence[Path], output: Path) -> bool:
    """``--output`` names the one result file rather than a folder: one input, and an output
    with an image or video suffix that is not an existing folder."""
    return len(sources) == 1 and output.suffix.lower() in MEDIA_SUFFIXES and not output.is_dir()


def refuse_std_streams(inputs: Sequence[str], output: str) -> None:
    """``-`` means stdin or stdout to Unix tools, and sllen-run reads and writes named files
    only: ``-o -`` made a folder named ``-`` (nothing on stdout, exit 0), and an input ``-``
    was "no such file". Both are refused before a model loads."""
    if output == "-":
        raise InputError(
            "--output -: writing to stdout is not supported; name a file or folder "
            "(a folder named -: -o ./-)"
        )
    if "-" in inputs:
        raise InputError(
            "-: reading from stdin is not supported; name a file or folder (a file named -: ./-)"
        )


# A suffix that reads as a file format: two to five letters (``-o run.2024``, ``-o v1.0``,
# ``-o night.v2`` and ``-o conf.d`` are folders as they always were).
_FORMAT_LIKE = re.compile(r"\.[a-z]{2,5}")


def check_output_name(output: str, inputs: Sequence[str | os.PathLike[str]]) -> None:
    """One file typed as the input and an ``-o`` that reads as a file in a format sllen does
    not write (``-o out.xyz``): the user means a file, and it became a folder ``out.xyz/``
    holding ``1.png``. Refused, naming the formats, unless it is an existing folder or ends in
    a slash (``-o out.xyz/``: a folder, as ``cp`` reads it). A folder or a pattern as the input
    means a folder output, however many files it holds. ``output`` as typed: a Path drops the
    slash."""
    path = Path(output)
    suffix = path.suffix.lower()
    slash = output.endswith(("/", os.sep, os.altsep or "/"))
    if len(inputs) != 1 or not Path(inputs[0]).is_file():
        return
    if slash or suffix in MEDIA_SUFFIXES or path.is_dir() or not _FORMAT_LIKE.fullmatch(suffix):
        return
    kind, examples = (
        ("a video", ".mp4, .mkv, .mov, .webm") if is_video(Path(inputs[0])) else
        ("an image", ".jpg, .png, .tif, .webp, .heic")
    )  # fmt: skip
    raise InputError(
        f"--output {output}: {suffix} is not {kind} format sllen writes ({examples}, ...); "
        f"for a folder of that name add a slash: -o {output}/"
    )


def output_folder(sources: Sequence[Path], output: Path) -> Path:
    """The folder the results go into: ``output``, or the folder of a file output."""
    return output.parent if is_file_output(sources, output) else output


def _h264(codec: str) -> bool:
    if codec in DEFAULT_CODECS:
        return True  # and photo runs need no PyAV import
    from sllen.runtime.video.containers import is_h264

    return is_h264(codec)


def _holds(suffix: str, codec: str) -> bool | None:
    """Whether a video file named ``*suffix`` holds ``codec``'s video (None: unknown)."""
    if _h264(codec):
        # H.264's own list, whichever encoder makes it (FFmpeg would also put H.264 into
        # .avi, where B-frames and variable frame rates do not survive)
        return suffix.lower() in H264_CONTAINERS
    from sllen.runtime.video.containers import holds_video

    return holds_video(suffix, codec)


def _file_output(src: Path, dst: Path, codec: str) -> Path:
    if is_video(src) != is_video(dst):
        kinds = ("a video", "an image") if is_video(src) else ("an image", "a video")
        raise InputError(f"{src} is {kinds[0]}, but --output {dst} names {kinds[1]}")
    # None (this cannot be known here, e.g. .ts): the writer decides
    if is_video(dst) and _holds(dst.suffix, codec) is False:
        if _h264(codec):
            other = {".webm": "libvpx-vp9", ".avi": "mpeg4"}.get(dst.suffix.lower())
            codec_hint = f" (for {dst.suffix.lower()} add --codec {other})" if other else ""
            raise InputError(
                f"--output {dst}: a video is written as H.264, which goes into "
                f"{', '.join(sorted(H264_CONTAINERS))}, not {dst.suffix}{codec_hint}"
            )
        raise InputError(
            f"--output {dst}: a {dst.suffix} file cannot hold {codec} video: name a .mkv "
            "(it holds almost any codec) or choose another --codec"
        )
    if dst.resolve() == src.resolve():
        raise InputError(f"{src}: the output {dst} would overwrite the input; name another file")
    if dst.suffix.lower() in HEIF_SUFFIXES:
        # the writer's own check (pillow-heif, the heic extra), made before the model loads:
        # the one output of this run could not be written (a HEIC input in a folder run is
        # reported on its own while the others run)
        from sllen.runtime.images import _register_heif

        _register_heif(dst, "writing")
    return dst


def output_paths(sources: list[Path], folder: Path, codec: str = "libx264") -> dict[Path, Path]:
    """Where each source's result goes: its path relative to the inputs' common folder,
    mirrored under ``folder`` (inputs from one folder keep their bare names; ``*/day/img.png``
    over three folders gives ``a/day/img.png``, ``b/day/img.png``, ...). Videos keep their
    container where it holds ``codec``'s video (the sllen-run --codec; H.264 by default), else
    go into ``.mp4`` (``.mkv`` where MP4 cannot hold the codec). No two sources share an
    output (names that still meet, e.g. ``v.avi`` and ``v.mp4``, get the changed one's
    source suffix: ``v_avi.mp4``), and an output that would replace any input is refused. An
    image whose name has no image suffix (read by its content) is written as PNG. One source
    and a ``folder`` that names a file (``-o night.jpg``, ``is_file_output``) give that file:
    an image in the format its suffix names, a video in a container that holds ``codec``."""
    if not sources:
        return {}
    if is_file_output(sources, folder):
        return {sources[0]: _file_output(sources[0], folder, codec)}
    if folder.suffix.lower() in MEDIA_SUFFIXES and not folder.is_dir():
        raise InputError(
            f"--output {folder} names one file, but {len(sources)} inputs were given: "
            "name a folder for them"
        )
    # Mirror the paths as named (a symlink keeps its own name and folder); refuse outputs
    # that would land on any input's real file.
    named = {src: Path(os.path.abspath(src)) for src in sources}
    inputs = {str(p.resolve()).lower() for p in sources}
    root = Path(os.path.commonpath([p.parent for p in named.values()]))
    taken: set[str] = set()
    out: dict[Path, Path] = {}
    suffixes = {src: _output_suffix(src, codec) for src in sources}
    # Sources that keep their suffix choose first: ``v.mp4`` stays ``v.mp4`` beside ``v.avi``
    # (-> ``v_avi.mp4``), whatever order they came in.
    for src in sorted(sources, key=lambda p: suffixes[p] != p.suffix):
        rel = named[src].relative_to(root)
        suffix = suffixes[src]
        dst = folder / rel.parent / (rel.stem + suffix)
        n = 1
        while str(dst.resolve()).lower() in taken:  # lower: case-insensitive file systems
            tag = rel.suffix[1:].lower() + (f"_{n}" if n > 1 else "")
            dst = folder / rel.parent / f"{rel.stem}_{tag}{suffix}"
            n += 1
        if str(dst.resolve()).lower() in inputs:
            raise InputError(
                f"{src}: the output {dst} would overwrite an input; choose another --output folder"
            )
        taken.add(str(dst.resolve()).lower())
        out[src] = dst
    return {src: out[src] for src in sources}


def already_done(sources: list[Path], outputs: dict[Path, Path], codec: str) -> set[Path]:
    """``--resume``: the sources whose output (``outputs``, from output_paths) is there. Not
    those that want one output name with another source of this run (``v.avi`` and
    ``v.mp4``; ``a`` and ``a.png``): which keeps the plain name depends on the other inputs,
    so an output found under it may be a different source's result from an earlier run;
    they are enhanced again rather than the name trusted."""
    wanted: dict[str, list[Path]] = {}
    for src in sources:
        plain = Path(os.path.abspath(src)).with_suffix(_output_suffix(src, codec))
        wanted.setdefault(str(plain).lower(), []).append(src)
    rivals = {src for group in wanted.values() if len(group) > 1 for src in group}
    return {src for src in sources if src not in rivals and outputs[src].exists()}


def _output_suffix(src: Path, codec: str) -> str:
    if is_video(src):
        # the input's container where it is one of ours and holds the codec (VP9 from a .webm
        # stays in .webm); else .mp4, else .mkv, which holds almost anything
        ours = (*H264_CONTAINERS, ".webm")
        if src.suffix.lower() in ours and _holds(src.suffix, codec):
            return src.suffix
        return ".mp4" if _holds(".mp4", codec) is not False else ".mkv"
    if src.suffix.lower() in IMAGE_SUFFIXES:
        return src.suffix
    return src.suffix + ".png"  # ``scan`` -> ``scan.png``: the writer needs a format
