"""Calibration frames: folders, globs, videos, brightness stratification, errors (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from sllen.calib.frames import (
    brightened_copies,
    load_calibration_frames,
    mean_luma,
    resize_cover,
    split_holdout,
    stratified_choice,
    synthetic_calibration_frames,
    synthetic_pairs,
)
from sllen.runtime.images import write_image

av = pytest.importorskip("av")


def _flat(level: float, h: int = 40, w: int = 56) -> np.ndarray:
    rng = np.random.default_rng(int(level * 1000))
    return np.clip(level + 0.02 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    for i, level in enumerate(np.linspace(0.02, 0.9, 20)):
        write_image(folder / f"img{i:02d}.png", _flat(float(level)))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _write_video(path, levels, size=(48, 64), codec="mpeg4"):
    h, w = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {}
        stream.codec_context.gop_size = 4
        for level in levels:
            rgb = np.full((h, w, 3), int(round(level * 255)), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    # 48 frames whose brightness encodes the frame index: level = 0.05 + 0.018 * i
    levels = [0.05 + 0.018 * i for i in range(48)]
    return _write_video(tmp_path_factory.mktemp("vid") / "clip.mp4", levels), levels


def test_folder_gives_nchw_float_frames_cropped_to_16(image_folder) -> None:
    frames = load_calibration_frames([image_folder], count=8)
    assert frames.shape == (8, 3, 32, 48) and frames.dtype == np.float32
    assert 0.0 <= frames.min() and frames.max() <= 1.0


def test_size_resizes_and_crops(image_folder) -> None:
    frames = load_calibration_frames([str(image_folder)], count=4, size=(64, 32))
    assert frames.shape == (4, 3, 64, 32)
    img = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    assert resize_cover(img, (32, 32)).shape == (32, 32, 3)


def test_glob_and_single_file(image_folder) -> None:
    frames = load_calibration_frames([str(image_folder / "img0*.png")], count=100)
    assert len(frames) == 10  # img00..img09: fewer than count -> all of them
    one = load_calibration_frames([image_folder / "img05.png"], count=3)
    assert one.shape == (1, 3, 32, 48)


def test_stratification_spans_the_brightness_range(image_folder) -> None:
    frames = load_calibration_frames([image_folder], count=4, seed=3)
    lum = np.sort(mean_luma(frames))
    all_lum = np.sort(mean_luma(load_calibration_frames([image_folder], count=20)))
    assert lum[0] <= all_lum[4] and lum[-1] >= all_lum[-5]  # darkest and brightest quintiles
    again = load_calibration_frames([image_folder], count=4, seed=3)
    np.testing.assert_array_equal(frames, again)  # deterministic with the seed
    # The primitive: one pick per quantile bin.
    values = np.r_[np.zeros(90), np.ones(10)]  # 10% bright
    picks = stratified_choice(values, 10, seed=1)
    assert values[picks].sum() == 1.0 and len(picks) == 10


@pytest.mark.parametrize("count", [1, 6])  # 1: sparse, by seeking; 6: decode-and-skip
def test_video_frames_are_spread_over_the_whole_clip(video, count) -> None:
    path, levels = video
    frames = load_calibration_frames([path], count=count)
    assert frames.shape == (count, 3, 48, 64)
    index = np.round((mean_luma(frames) - 0.05) / 0.018)
    if count == 6:
        # candidates are 18 evenly spaced frames; the picks reach both ends of the clip
        assert index.min() <= 8 and index.max() >= 40
    else:
        assert 4 <= index[0] <= 44  # not simply the first frame
    mixed = load_calibration_frames([path, str(path.parent / "*.mp4")], count=4, size=(32, 32))
    assert mixed.shape == (4, 3, 32, 32)


def test_errors_are_one_line_value_errors(tmp_path, image_folder) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"\x00not a video" * 64)
    cases = {
        "no calibration sources": [],
        "no such file": [tmp_path / "missing"],
        "no images": [empty],
        "matches no": [str(tmp_path / "*.png")],
        "PyAV can decode": [bad_video],
    }
    for message, sources in cases.items():
        with pytest.raises(ValueError, match=message) as err:
            load_calibration_frames(sources, count=2)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="multiples of 16"):
        load_calibration_frames([image_folder], size=(30, 32))
    with pytest.raises(ValueError, match="GiB"):
        load_calibration_frames([image_folder], count=4, max_bytes=1000)


def test_split_holdout_and_synthetic_frames() -> None:
    frames = synthetic_calibration_frames(10, (32, 32), seed=1)
    assert frames.shape == (10, 3, 32, 32) and frames.dtype == np.float32
    assert float(mean_luma(frames).mean()) < 0.3  # dark scenes
    calib, hold = split_holdout(frames, 0.2, seed=0)
    assert len(calib) == 8 and len(hold) == 2
    low, ref = synthetic_pairs(2, (32, 32))
    assert low.shape == ref.shape and ref.mean() > low.mean()
    with pytest.raises(ValueError):
        split_holdout(frames[:1])


def test_budget_eval_frames_from_sources_dark_and_bright(tmp_path):
    from sllen.calib.frames import budget_eval_frames

    dark, bright = tmp_path / "dark", tmp_path / "bright"
    for folder, level in ((dark, 0.05), (bright, 0.6)):
        for i in range(3):
            write_image(folder / f"img{i:02d}.png", _flat(level + 0.01 * i))
    frames, refs, text = budget_eval_frames([dark], (32, 32), count=3)
    assert frames.shape == (3, 3, 32, 32) and refs == "enhanced" and "dark footage" in text
    frames, refs, text = budget_eval_frames([bright], (32, 32), count=3)
    assert refs == "frames" and "well-lit" in text


def test_budget_eval_frames_default_is_photos_or_generated_scenes():
    from sllen.calib.frames import budget_eval_frames

    frames, refs, text = budget_eval_frames(None, (32, 48), count=2)
    assert frames.shape == (2, 3, 32, 48) and refs == "frames"
    assert frames.min() >= 0 and frames.max() <= 1
    assert "photographs" in text or "generated" in text


def test_few_frames_are_warned_about() -> None:
    from sllen.calib.frames import FEW_FRAMES, few_frames_note

    note = few_frames_note(3)
    assert note is not None and "only 3 calibration frames" in note and "\n" not in note
    assert few_frames_note(1) is not None and "1 calibration frame:" in (few_frames_note(1) or "")
    assert few_frames_note(FEW_FRAMES) is None and few_frames_note(300) is None


def test_brightened_copies_reach_the_target_and_skip_bright_frames() -> None:
    from sllen.calib.frames import BRIGHT_MAX_GAIN, BRIGHT_PERCENTILE, BRIGHT_TARGET

    rng = np.random.default_rng(0)
    dim = rng.uniform(0, 0.3, (2, 3, 16, 16)).astype(np.float32)
    bright = rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
    black = np.full((1, 3, 16, 16), 0.01, np.float32)
    out = brightened_copies(np.concatenate([dim, bright, black]))
    assert out.shape == (3, 3, 16, 16) and out.dtype == np.float32
    level = np.percentile(out[:2].reshape(2, -1), BRIGHT_PERCENTILE, axis=1)
    np.testing.assert_allclose(level, BRIGHT_TARGET, rtol=1e-4)
    for copy, frame in zip(out[:2], dim, strict=True):  # one gain per frame, clipped at 1
        gain = copy / frame
        np.testing.assert_allclose(gain[copy < 1], gain.flat[0], rtol=1e-5)
    np.testing.assert_allclose(out[2], 0.01 * BRIGHT_MAX_GAIN)  # near-black: gain capped
    assert out.max() <= 1.0 and brightened_copies(dim[:0]).shape == (0, 3, 16, 16)


def test_a_folder_of_videos_gives_frames_of_every_video(tmp_path) -> None:
    # `--calib-data footage/` (docs/deploy-jetson.md) was refused: "folder has no images".
    from sllen.calib.frames import budget_eval_frames

    footage = tmp_path / "footage"
    footage.mkdir()
    _write_video(footage / "long.mp4", [0.05 + 0.001 * i for i in range(48)])  # dark, long
    _write_video(footage / "short.mp4", [0.6 + 0.01 * i for i in range(12)])  # bright, short
    write_image(footage / "still.png", _flat(0.3, 48, 64))
    (footage / "notes.txt").write_text("not footage")
    # the folder is listed as sllen-run lists it: what is not read is said, not left out
    from sllen.runtime.inputs import SkippedFilesWarning

    with pytest.warns(SkippedFilesWarning, match=r"skipped 1 file .*\(1 \.txt\)"):
        frames = load_calibration_frames([footage], count=6)
    lum = mean_luma(frames)
    assert frames.shape == (6, 3, 48, 64)
    # both clips are in: the long one does not crowd out the short one
    assert (lum < 0.15).sum() >= 2 and (lum > 0.5).sum() >= 2
    # --eval-data takes the same folders
    _, refs, text = budget_eval_frames([footage], (32, 32), count=3)
    assert str(footage) in text and refs in ("enhanced", "frames")


def test_a_paired_folder_gives_its_low_images(tmp_path) -> None:
    # `--eval-data LOL/eval15` (what sllen-eval --data takes) was refused as a folder without
    # images; its low/ images are the dark frames a deployment sees.
    for sub, level in (("low", 0.05), ("high", 0.5)):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
        for i in range(3):
            write_image(tmp_path / "pairs" / sub / f"{i}.png", _flat(level, 32, 48))
    frames = load_calibration_frames([tmp_path / "pairs"], count=3)
    assert frames.shape == (3, 3, 32, 48) and float(mean_luma(frames).max()) < 0.1
    (tmp_path / "nested" / "day1").mkdir(parents=True)
    with pytest.raises(ValueError, match="subfolders are not searched: name one") as err:
        load_calibration_frames([tmp_path / "nested"], count=3)
    assert "\n" not in str(err.value) and ".jfif" not in str(err.value)


def test_the_candidates_are_spread_over_the_sources() -> None:
    from sllen.calib.frames import _spread

    assert _spread(18, [48, 12]) == [9, 9]  # equal shares
    assert _spread(10, [2, 100, 100]) == [2, 4, 4]  # a short source gives all it has
    assert _spread(30, [1000, 5]) == [25, 5]
    assert _spread(2, [5, 5, 5]) == [1, 1, 1]  # at least one frame of each
