"""sllen-run as a library: finding inputs, naming outputs, folder runs that survive a bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sllen.runtime.backends import open_backend
from sllen.runtime.enhancer import Enhancer
from sllen.runtime.errors import InputError
from sllen.runtime.inputs import (
    NoInputsError,
    SkippedFilesWarning,
    collect_inputs,
    output_folder,
    output_paths,
)
from sllen.runtime.run import RunOptions, run_files


def img(path: Path, size: tuple[int, int] = (24, 40), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 40, (*size, 3), dtype=np.uint8)).save(path)
    return path


def test_collect_inputs(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    a, b = img(d / "a.png"), img(d / "b.jpg")
    (d / "notes.txt").write_text("x")
    (d / ".hidden.png").write_bytes(b"")
    for name in ("IMG_1.DNG", "IMG_2.dng", "README"):
        (d / name).write_bytes(b"x")
    # skipped files are named, not left out in silence (a hidden one is not counted)
    with pytest.warns(SkippedFilesWarning, match=r"skipped 4 files .*\(2 \.dng, "):
        assert collect_inputs([d]) == [a, b]
    assert collect_inputs([str(d / "*.jpg"), a, str(a)]) == [b, a]  # each once
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        collect_inputs([tmp_path / "missing.png"])
    with pytest.raises(NoInputsError, match="no file matches"):
        collect_inputs([str(tmp_path / "*.tif")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoInputsError, match=r"no images or videos in this folder$"):
        collect_inputs([tmp_path / "empty"])
    (tmp_path / "nest" / "day1").mkdir(parents=True)  # pictures one level down only
    (tmp_path / "nest" / "day1" / "x.jpg").write_bytes(b"")
    with pytest.raises(NoInputsError, match=r"subfolders are not searched.*nest/\*\*/\*'"):
        collect_inputs([tmp_path / "nest"])
    # the suggested glob, as a shell would pass it, finds the pictures: escaped brackets
    import shlex

    odd = tmp_path / "shots [raw]"
    (odd / "day1").mkdir(parents=True)
    (odd / "day1" / "y.jpg").write_bytes(b"")
    with pytest.raises(NoInputsError, match="subfolders are not searched") as e:
        collect_inputs([odd])
    suggested = shlex.split(str(e.value).split("a glob such as ", 1)[1].rstrip(")"))
    assert collect_inputs(suggested) == [odd / "day1" / "y.jpg"]
    (tmp_path / "hidden" / ".thumbnails").mkdir(parents=True)  # no reason for a glob
    with pytest.raises(NoInputsError, match=r"no images or videos in this folder$"):
        collect_inputs([tmp_path / "hidden"])
    with pytest.raises(NoInputsError, match="no input"):
        collect_inputs([])


def test_a_globs_earlier_results_in_the_output_folder_are_not_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for folder in ("day", "bright/day"):
        Path(folder).mkdir(parents=True)
    a, b = img(Path("01.jpg")), img(Path("day") / "02.jpg")
    earlier = [img(Path("bright") / "01.jpg"), img(Path("bright") / "day" / "02.jpg")]
    with pytest.warns(SkippedFilesWarning, match=r"\*\*/\*\.jpg: skipped 2 files in the output "):
        assert collect_inputs(["**/*.jpg"], "bright") == [a, b]
    with pytest.warns(SkippedFilesWarning, match="skipped 2 files"):  # ./bright, absolute
        found = collect_inputs([str(tmp_path / "**" / "*.jpg")], "./bright")
    assert found == [tmp_path / a, tmp_path / b]
    # named by the user: a file, a folder or a glob that starts in the output folder stays
    # (the overwrite check refuses it), and so does any input without an output folder
    assert collect_inputs([earlier[0]], "bright") == earlier[:1]
    assert collect_inputs(["bright/*.jpg"], "bright") == earlier[:1]
    assert collect_inputs(["bright"], "bright") == earlier[:1]
    assert len(collect_inputs(["**/*.jpg"])) == 4
    assert len(collect_inputs(["**/*.jpg"], "bright/01.jpg")) == 4  # names a file
    with pytest.raises(NoInputsError, match="every match lies in the output folder bright"):
        collect_inputs(["*/day/*.jpg"], "bright")


def test_symlinks_are_inputs_named_as_the_links(tmp_path: Path) -> None:
    # A folder of chosen shots linked from elsewhere: every link is an input, and its result
    # is named after the link, not after the file it points to (nor in that file's folder).
    for sub in ("x", "y", "sel"):
        (tmp_path / sub).mkdir()
    x, y = img(tmp_path / "x" / "IMG_1.jpg"), img(tmp_path / "y" / "IMG_1.jpg", seed=1)
    links = []
    for name, target in (("best1", x), ("best2", y), ("best3", x)):
        link = tmp_path / "sel" / f"{name}.jpg"
        link.symlink_to(target)
        links.append(link)
    sources = collect_inputs([tmp_path / "sel"])
    assert sources == links  # three, though two point to one file
    out = tmp_path / "out"
    assert output_paths(sources, out) == {p: out / p.name for p in links}
    assert collect_inputs([links[0], tmp_path / "sel" / ".." / "sel" / "best1.jpg"]) == links[:1]
    assert output_paths([x], tmp_path / "sel") == {x: tmp_path / "sel" / "IMG_1.jpg"}
    (tmp_path / "trap").mkdir()
    (tmp_path / "trap" / "IMG_1.jpg").symlink_to(x)  # writing there would replace x itself
    with pytest.raises(InputError, match="would overwrite an input"):
        output_paths([x], tmp_path / "trap")


def test_a_tiled_photo_reports_its_tiles(tmp_path: Path) -> None:
    from sllen.runtime.run import run_one

    src = img(tmp_path / "big.png", size=(80, 120))
    heard: list[tuple[str, int, int | None]] = []
    enhancer = Enhancer(open_backend(None, "onnxruntime", threads=1), tile=(48, 48))
    result = run_one(src, tmp_path / "o" / "big.png", enhancer, RunOptions(output=tmp_path / "o"),
                     lambda name, done, total: heard.append((name, done, total)))  # fmt: skip
    assert result.error is None and enhancer.on_tile is None  # unhooked after the photo
    tiles = [h for h in heard if h[0] == "big.png (tiles)"]
    assert tiles and tiles[-1][1] == tiles[-1][2] and heard[-1] == ("big.png", 1, 1)


def test_output_paths(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    srcs = [tmp_path / "x" / "a.png", tmp_path / "y" / "a.png", tmp_path / "v.avi"]
    out = output_paths(srcs, out_dir)
    # Paths mirrored below the inputs' common folder: a second a.png does not overwrite the first.
    assert out[srcs[0]] == out_dir / "x" / "a.png"
    assert out[srcs[1]] == out_dir / "y" / "a.png"
    assert out[srcs[2]] == out_dir / "v.mp4"  # H.264 goes into an mp4
    one = [tmp_path / "x" / "a.png", tmp_path / "x" / "b.jpg"]
    assert [p.name for p in output_paths(one, out_dir).values()] == ["a.png", "b.jpg"]
    with pytest.raises(ValueError, match="overwrite an input"):
        output_paths([tmp_path / "x" / "a.png"], tmp_path / "x")


def test_an_image_named_without_a_suffix_is_written_as_png(tmp_path: Path) -> None:
    srcs = [tmp_path / "scan", tmp_path / "photo.v2"]
    assert [p.name for p in output_paths(srcs, tmp_path / "out").values()] == [
        "scan.png",
        "photo.v2.png",
    ]


def test_one_input_and_a_file_name_give_that_file(tmp_path: Path) -> None:
    src = tmp_path / "in" / "a.png"
    assert output_paths([src], tmp_path / "r.jpg") == {src: tmp_path / "r.jpg"}
    assert output_folder([src], tmp_path / "deep" / "r.webp") == tmp_path / "deep"
    video = tmp_path / "in" / "v.avi"
    assert output_paths([video], tmp_path / "v.mkv") == {video: tmp_path / "v.mkv"}
    (tmp_path / "folder.png").mkdir()  # an existing folder stays a folder, whatever its name
    assert output_paths([src], tmp_path / "folder.png") == {src: tmp_path / "folder.png" / "a.png"}
    assert output_folder([src], tmp_path / "folder.png") == tmp_path / "folder.png"
    with pytest.raises(ValueError, match="names one file, but 2 inputs"):
        output_paths([src, video], tmp_path / "r.jpg")
    with pytest.raises(ValueError, match="is an image, but --output .* names a video"):
        output_paths([src], tmp_path / "r.mp4")
    with pytest.raises(ValueError, match="is a video, but --output .* names an image"):
        output_paths([video], tmp_path / "r.png")
    with pytest.raises(ValueError, match="H.264, which goes into .m4v, .mkv, .mov, .mp4, not .avi"):
        output_paths([video], tmp_path / "r.avi")
    with pytest.raises(ValueError, match="would overwrite the input"):
        output_paths([src], src)


def test_another_codec_picks_a_container_that_holds_it(tmp_path: Path) -> None:
    # `-o x.webm --codec libvpx-vp9` was refused ("a video is written as H.264"), and a .webm
    # given --codec libvpx-vp9 came out as VP9 in .mp4.
    av = pytest.importorskip("av")
    webm, mp4, avi = (tmp_path / f"in.{s}" for s in ("webm", "mp4", "avi"))
    vp9 = "libvpx-vp9"
    assert output_paths([mp4], tmp_path / "x.webm", vp9) == {mp4: tmp_path / "x.webm"}
    assert output_paths([webm], tmp_path / "o", vp9)[webm].name == "in.webm"
    assert output_paths([mp4], tmp_path / "o", vp9)[mp4].name == "in.mp4"  # MP4 holds VP9
    assert output_paths([webm], tmp_path / "o")[webm].name == "in.mp4"  # H.264: as before
    # an .avi still becomes .mp4 (as before: --resume finds earlier outputs); named, it is kept
    assert output_paths([avi], tmp_path / "o", "mpeg4")[avi].name == "in.mp4"
    assert output_paths([mp4], tmp_path / "x.avi", "mpeg4") == {mp4: tmp_path / "x.avi"}
    with pytest.raises(ValueError, match=r"H.264.*for .webm add --codec libvpx-vp9"):
        output_paths([mp4], tmp_path / "x.webm")
    with pytest.raises(ValueError, match=r"H.264.*for .avi add --codec mpeg4"):
        output_paths([mp4], tmp_path / "x.avi")
    with pytest.raises(ValueError, match="a .webm file cannot hold mpeg4 video: name a .mkv"):
        output_paths([mp4], tmp_path / "x.webm", "mpeg4")
    # any H.264 encoder goes by H.264's list (FFmpeg's avi muxer lists h264_nvenc too)
    if "h264_nvenc" in av.codecs_available:
        assert output_paths([avi], tmp_path / "o", "h264_nvenc")[avi].name == "in.mp4"
        with pytest.raises(
            ValueError, match=r"H.264, which goes into .*not .avi \(for .avi add --codec mpeg4\)$"
        ):
            output_paths([mp4], tmp_path / "x.avi", "h264_nvenc")
    # a container whose list FFmpeg does not state fully: the writer decides, not a refusal
    assert output_paths([mp4], tmp_path / "x.ts", "libx265") == {mp4: tmp_path / "x.ts"}


def test_output_paths_never_collide(tmp_path: Path) -> None:
    # The glob '*/day/img.png' over three folders, and two videos whose outputs meet as v.mp4.
    srcs = [tmp_path / d / "day" / "img.png" for d in ("a", "b", "c")]
    srcs += [tmp_path / "a" / "v.avi", tmp_path / "a" / "v.mp4", tmp_path / "a" / "V.AVI"]
    out = output_paths(srcs, tmp_path / "out")
    assert len({str(p).lower() for p in out.values()}) == len(srcs)
    assert out[srcs[1]] == tmp_path / "out" / "b" / "day" / "img.png"
    # The file that keeps its suffix keeps its name too: v.mp4, and v.avi becomes v_avi.mp4.
    assert out[srcs[4]].name == "v.mp4" and out[srcs[3]].name == "v_avi.mp4"
    assert list(out) == srcs  # in the order given
    gif = output_paths([tmp_path / "a.gif", tmp_path / "a.mp4"], tmp_path / "out")
    assert [p.name for p in gif.values()] == ["a_gif.mp4", "a.mp4"]
    # An output that lands on another input (not its own) is refused too.
    with pytest.raises(ValueError, match="overwrite an input"):
        output_paths(
            [tmp_path / "in" / "a.avi", tmp_path / "in" / "sub" / "a.mp4"], tmp_path / "in" / "sub"
        )


def test_folder_run_survives_a_bad_file(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    img(d / "a.png")
    (d / "b.png").write_bytes(b"garbage")
    img(d / "c.jpg", (33, 17))
    out = tmp_path / "out"
    with open_backend(None, "onnxruntime", threads=1) as b:
        summary = run_files(collect_inputs([d]), Enhancer(b), RunOptions(output=out))
    assert [r.source.name for r in summary.failed] == ["b.png"]
    assert "b.png" in (summary.failed[0].error or "")
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.jpg"]
    assert Image.open(out / "c.jpg").size == (17, 33)
    assert summary.times.frames == 2 and summary.times.infer > 0
    good = [r for r in summary.results if not r.error]
    assert [r.times.frames for r in good] == [1, 1]  # each file's own stage times, typed
    assert sum(r.times.infer for r in good) == pytest.approx(summary.times.infer)
    # brighter than the input
    assert np.asarray(Image.open(out / "a.png")).mean() > np.asarray(Image.open(d / "a.png")).mean()


def test_resume_skips_finished_outputs_only(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    srcs = [img(d / "a.png"), img(d / "b.png", seed=1)]
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"finished before the crash")
    # what a killed run leaves of b (an AtomicFile's temporary file), and a file of the user's
    (out / ".b.png.k2j4_x9q.png").write_bytes(b"half")
    (out / ".b.png.notes").write_bytes(b"mine")
    with open_backend(None, "onnxruntime", threads=1) as b:
        summary = run_files(srcs, Enhancer(b), RunOptions(output=out, skip_existing=True))
    assert sorted(p.name for p in out.glob(".*")) == [".b.png.notes"]
    assert [(r.source.name, r.skipped) for r in summary.results] == [
        ("a.png", True),
        ("b.png", False),
    ]
    assert (out / "a.png").read_bytes() == b"finished before the crash"  # left as it was
    assert Image.open(out / "b.png").size == (40, 24) and summary.frames == 1


def test_side_by_side_and_segmentation(tmp_path: Path) -> None:
    src = img(tmp_path / "a.png")
    out = tmp_path / "out"
    with open_backend(None, "onnxruntime", threads=1) as b:
        run_files(
            [src],
            Enhancer(b, segmentation=True),
            RunOptions(output=out, side_by_side=True, segmentation=True),
        )
    assert Image.open(out / "a.png").size == (80, 24)
    assert Image.open(out / "a.segmentation.png").size == (40, 24)


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with open_backend(None, "onnxruntime", threads=1) as b:
        with pytest.raises(OSError, match="cannot create the output folder"):
            run_files([img(tmp_path / "a.png")], Enhancer(b), RunOptions(output=blocker / "o"))


@pytest.mark.slow
def test_tile_option_bounds_the_model_input(tmp_path: Path) -> None:
    src = img(tmp_path / "a.png", (100, 120))
    with open_backend(None, "onnxruntime", threads=1) as b:
        enh = Enhancer(b, tile=(64, 64))
        seen = []
        infer = b.infer
        b.infer = lambda x, **k: (seen.append(x.shape), infer(x, **k))[1]  # type: ignore[method-assign]
        run_files([src], enh, RunOptions(output=tmp_path / "o"))
    assert seen and all(s[2] <= 64 and s[3] <= 64 for s in seen)
    assert Image.open(tmp_path / "o" / "a.png").size == (120, 100)


def small_clip(src: Path) -> Path:
    """Six 32x24 frames at 12 fps, H.264 in the container ``src``'s suffix names."""
    av = pytest.importorskip("av")
    with av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 10 * i, np.uint8), "rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return src


def test_video_result_carries_its_stage_times(tmp_path: Path) -> None:
    src = small_clip(tmp_path / "clip.mp4")
    with open_backend(None, "onnxruntime", threads=1) as b:
        summary = run_files([src], Enhancer(b), RunOptions(output=tmp_path / "out", smooth=False))
    (result,) = summary.results
    assert result.error is None and result.frames == 6
    assert result.fps == 12 and result.smoothing is False
    t = result.times
    assert t.frames == 6 and min(t.decode, t.infer, t.encode) > 0
    assert summary.times.per_frame_ms() == t.per_frame_ms()


def test_a_clip_of_unknown_length_gets_its_total_when_done(tmp_path: Path) -> None:
    # An .mkv states no frame count: its progress row stayed at "6/?" and its timer kept
    # running while the next file was enhanced.
    src = small_clip(tmp_path / "clip.mkv")  # .mkv: no frame count in the container
    calls: list[tuple[str, int, int | None]] = []
    with open_backend(None, "onnxruntime", threads=1) as b:
        opts = RunOptions(output=tmp_path / "out")
        run_files([src], Enhancer(b), opts, progress=lambda *a: calls.append(a))
    assert calls[0] == ("clip.mkv", 1, None)
    assert calls[-1] == ("clip.mkv", 6, 6)


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_side_by_side_of_a_turned_clip_is_side_by_side_as_shown(
    tmp_path: Path, rotation: int
) -> None:
    # A phone's portrait clip: frames stored landscape, a display matrix turns them. The
    # input must be on the left and the result on the right as a player shows them.
    av = pytest.importorskip("av")
    from sllen.runtime.video import probe, read_frames

    src = tmp_path / "turned.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=12)
        v.width, v.height, v.pix_fmt = 48, 32, "yuv420p"
        v.set_display_rotation(rotation)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 25, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    with open_backend(None, "onnxruntime", threads=1) as b:
        run_files([src], Enhancer(b), RunOptions(output=tmp_path / "o", side_by_side=True))
    info = probe(tmp_path / "o" / "turned.mp4")
    assert info.rotation % 360 == rotation % 360
    turned = rotation % 180 != 0
    assert (info.width, info.height) == ((48, 64) if turned else (96, 32))
    for f in read_frames(tmp_path / "o" / "turned.mp4"):
        shown = np.rot90(f.image, round(rotation / 90)).astype(np.float32)
        half = shown.shape[1] // 2
        assert abs(shown[:, :half].mean() - 25) < 3  # the input, on the left
        assert shown[:, half:].mean() > 50  # the result, on the right


def test_resume_enhances_again_what_another_input_could_have_named(tmp_path: Path) -> None:
    # `a` (no suffix: written as a.png) alone made out/a.png; with a.png beside it, a.png
    # takes the plain name and `a` becomes a_.png. The a.png found is `a`'s result: --resume
    # must not skip a.png's own enhancement on its name (was: a enhanced twice, a.png never).
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    img(d / "a.png", seed=3).rename(d / "a")
    with open_backend(None, "onnxruntime", threads=1) as b:
        run_files([d / "a"], Enhancer(b), RunOptions(output=out))
        first = (out / "a.png").read_bytes()
        img(d / "a.png", seed=4)
        summary = run_files(
            [d / "a", d / "a.png"], Enhancer(b), RunOptions(output=out, skip_existing=True)
        )
    assert [r.skipped for r in summary.results] == [False, False]
    assert (out / "a.png").read_bytes() != first  # now a.png's own result
    assert (out / "a_.png").is_file()


def test_an_output_format_too_small_for_the_picture_is_refused_before_inference(
    tmp_path: Path,
) -> None:
    # A 20000-pixel-wide panorama to .webp (16383 a side) failed after minutes of inference;
    # side by side doubles the width (a 10000-pixel photo too).
    from affine_backend import Recorder

    wide = img(tmp_path / "pano.png", (8, 10_000))
    backend = Recorder()
    opts = RunOptions(output=tmp_path / "o.webp", side_by_side=True)
    (failed,) = run_files([wide], Enhancer(backend), opts).failed
    assert "20000x8 is over WEBP's limit of 16383 pixels a side" in (failed.error or "")
    assert backend.shapes == []  # never inferred
    assert not run_files([wide], Enhancer(backend), RunOptions(output=tmp_path / "o.jpg")).failed
    assert len(backend.shapes) == 1  # 10000 < JPEG's 65500
    assert not (tmp_path / "o.webp").exists() and (tmp_path / "o.jpg").is_file()


def test_std_streams_are_refused() -> None:
    from sllen.runtime.inputs import refuse_std_streams

    refuse_std_streams(["a.png", "./-"], "./-")  # a file and a folder named "-" as paths
    with pytest.raises(InputError, match="writing to stdout is not supported"):
        refuse_std_streams(["a.png"], "-")
    with pytest.raises(InputError, match="reading from stdin is not supported"):
        refuse_std_streams(["a.png", "-"], "out")


def test_an_output_name_in_no_format_sllen_writes(tmp_path: Path) -> None:
    from sllen.runtime.inputs import check_output_name

    src, video = tmp_path / "a.png", tmp_path / "v.mp4"
    src.write_bytes(b"png")
    video.write_bytes(b"mp4")
    out = str(tmp_path / "out.xyz")
    with pytest.raises(InputError, match=r"\.xyz is not an image format .*-o .*out\.xyz/$"):
        check_output_name(out, [src])
    with pytest.raises(InputError, match=r"\.mkvx is not a video format sllen writes \(\.mp4"):
        check_output_name(str(tmp_path / "v.mkvx"), [video])
    check_output_name(out + "/", [src])  # a folder, as typed
    check_output_name(out, [src, video])  # several inputs: a folder
    # a folder or pattern typed as the input means a folder output, even holding one file
    # (review R5: `-o photos.old` worked with two photos in the folder, not with one)
    check_output_name(out, [tmp_path])
    check_output_name(out, [str(tmp_path / "*.png")])
    for name in ("night.JPG", "plain", "run.2024", "v1.0", "shots.holiday", "night.v2", "conf.d"):
        check_output_name(str(tmp_path / name), [src])  # a format, or not a suffix
    (tmp_path / "out.xyz").mkdir()
    check_output_name(out, [src])  # an existing folder stays one


def test_a_big_photo_on_the_cpu_is_announced_and_its_tiles_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sllen.runtime import big_images
    from sllen.runtime.run import run_one

    src = img(tmp_path / "big.png", size=(80, 120))
    heard: list[str] = []
    enhancer = Enhancer(open_backend(None, "onnxruntime", threads=1), tile=(48, 48))
    dst, opts = tmp_path / "o" / "big.png", RunOptions(output=tmp_path / "o")
    assert run_one(src, dst, enhancer, opts, None, heard.append).error is None
    assert heard == []  # 0.01 MP: an ordinary photo stays quiet
    monkeypatch.setattr(big_images, "BIG_PIXELS", 9000)
    assert run_one(src, dst, enhancer, opts, None, heard.append).error is None
    assert heard[0] == "big.png: 0.0 MP (120x80), in tiles: this takes minutes on a CPU"
    assert heard[-1].startswith("big.png: 6 of 6 tiles done after ") and len(heard) == 7
    assert enhancer.on_tile is None  # unhooked after the photo


def test_an_output_folder_that_refuses_a_file_stops_the_run_before_inference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # root passes os.access in /sys or on a read-only mount: each photo failed only when
    # written, after its inference
    import tempfile

    from sllen.runtime.errors import WriteError

    def refused(**kw):
        raise OSError(30, "Read-only file system")

    def inference(x, **kw):
        raise AssertionError("the photo ran before its output folder was tried")

    src = img(tmp_path / "a.png")
    with open_backend(None, "onnxruntime", threads=1) as b:
        b.infer = inference  # type: ignore[method-assign]
        monkeypatch.setattr(tempfile, "mkstemp", refused)
        with pytest.raises(WriteError, match=r"a\.png: cannot write \(.*/o is not writable: Rea"):
            run_files([src], Enhancer(b), RunOptions(output=tmp_path / "o"))
