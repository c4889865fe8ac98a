"""sllen.runtime.big_images: the lines a long photo run prints, so a log does not look hung."""

from __future__ import annotations

import pytest

from sllen.runtime.big_images import TileLines, announce, big_image_note, duration


def test_only_a_big_photo_on_the_cpu_gets_a_note() -> None:
    assert big_image_note("a.jpg", 4000, 3000, "cpu", tiled=True) == (
        "a.jpg: 12.0 MP (4000x3000), in tiles: this takes minutes on a CPU"
    )
    assert big_image_note("b.png", 4096, 2160, "cpu", tiled=False) == (
        "b.png: 8.8 MP (4096x2160): this takes minutes on a CPU"
    )
    assert big_image_note("a.jpg", 4000, 1999, "cpu", tiled=False) is None  # 7.996 MP
    assert big_image_note("a.jpg", 7200, 4800, "cuda:0", tiled=True) is None  # seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (42, "42 s"), (185, "3 min 5 s"), (4320, "1 h 12 min")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_tile_lines_estimate_the_rest_at_most_ten_times() -> None:
    now = [100.0]
    said: list[str] = []
    lines = TileLines("big.png", said.append, clock=lambda: now[0])
    for done in range(1, 7):
        now[0] += 150  # 2.5 minutes a tile
        lines(done, 6)
    assert said[0] == "big.png: 1 of 6 tiles done after 2 min 30 s, about 12 min 30 s left"
    assert said[-1] == "big.png: 6 of 6 tiles done after 15 min 0 s"
    assert len(said) == 6
    said.clear()
    many = TileLines("pano.tif", said.append, clock=lambda: now[0])
    for done in range(1, 501):
        many(done, 500)
    assert len(said) == 10 and said[-1].startswith("pano.tif: 500 of 500 tiles done")


def test_announce_says_the_note_and_reports_tiles_only_when_tiled() -> None:
    said: list[str] = []
    assert announce("a.png", 100, 100, "cpu", (48, 48), said.append) is None and said == []
    assert isinstance(announce("b.png", 4000, 3000, "cpu", (2048, 2048), said.append), TileLines)
    assert announce("c.png", 4000, 3000, "cpu", None, said.append) is None
    assert [s.split(":")[0] for s in said] == ["b.png", "c.png"]
