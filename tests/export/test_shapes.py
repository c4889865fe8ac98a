"""ShapeProfile: WIDTHxHEIGHT parsing, validation with one-line errors, NCHW tuples, contains."""

import pytest

from sllen.export.shapes import (
    DEFAULT_PROFILE,
    ShapeProfile,
    format_size,
    parse_size,
    round_up,
)


@pytest.mark.parametrize(
    "text,expected",
    [("1280x720", (720, 1280)), ("1920X1088", (1088, 1920)), (" 512 x 256 ", (256, 512))],
)
def test_parse_size_reads_width_then_height(text, expected):
    # WIDTHxHEIGHT as ffmpeg and trtexec users write it; (height, width) in code.
    assert parse_size(text) == expected
    assert format_size(expected) == f"{expected[1]}x{expected[0]}"


@pytest.mark.parametrize("text", ["720", "720x", "x1280", "720*1280", "-720x1280", "1.5x2", ""])
def test_parse_size_rejects_other_text(text):
    with pytest.raises(ValueError, match="WIDTHxHEIGHT") as err:
        parse_size(text)
    assert "\n" not in str(err.value)


def test_parse_size_rejects_non_text():
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size((720, 1280))


def test_round_up_and_padding_to_multiples_of_16():
    assert round_up(1080) == 1088
    assert round_up(1088) == 1088
    assert round_up(1) == 16


def test_default_profile_is_720p_opt_and_padded_1080p_max():
    p = DEFAULT_PROFILE
    assert (p.min, p.opt, p.max, p.batch) == ((256, 256), (720, 1280), (1088, 1920), (1, 1, 1))
    assert p.for_input() == ((1, 3, 256, 256), (1, 3, 720, 1280), (1, 3, 1088, 1920))
    assert p.input_name == "input"


def test_profile_accepts_text_and_pairs():
    p = ShapeProfile("256x256", (512, 768), "1920x1088", batch=(1, 2, 4))
    assert p.opt == (512, 768)
    assert p.for_input() == ((1, 3, 256, 256), (2, 3, 512, 768), (4, 3, 1088, 1920))
    assert p.batch == (1, 2, 4)


def _one_line_error(**kwargs):
    base = {"min": (256, 256), "opt": (720, 1280), "max": (1088, 1920)}
    base.update(kwargs)
    with pytest.raises(ValueError) as err:
        ShapeProfile(**base)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_1080_is_refused_with_the_padded_size():
    message = _one_line_error(max=(1080, 1920))
    assert "max height 1080 is not a multiple of 16" in message
    assert "1088" in message


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"min": (250, 256)}, "min height 250 is not a multiple of 16"),
        ({"opt": (720, 1270)}, "opt width 1270 is not a multiple of 16"),
        ({"min": (0, 256)}, "min height must be positive"),
        ({"min": (256, -16)}, "min width must be positive"),
        ({"opt": (1104, 1280)}, "heights must satisfy min <= opt <= max"),
        ({"min": (256, 1296)}, "widths must satisfy min <= opt <= max"),
        ({"min": "256"}, "WIDTHxHEIGHT"),
        ({"min": (256,)}, "(height, width) pair"),
        ({"min": 256}, "(height, width) pair"),
        ({"min": (256.0, 256)}, "must be integers"),
        ({"min": (True, 256)}, "must be integers"),
        ({"batch": (1, 2)}, "three integers"),
        ({"batch": (1, 1.0, 1)}, "three integers"),
        ({"batch": 4}, "batch must be (min, opt, max)"),
        ({"batch": (0, 1, 1)}, "1 <= min <= opt <= max"),
        ({"batch": (2, 1, 4)}, "1 <= min <= opt <= max"),
        ({"input_name": ""}, "input_name"),
        ({"channels": 0}, "channels"),
    ],
)
def test_profile_validation_errors(kwargs, fragment):
    assert fragment in _one_line_error(**kwargs)


def test_contains_checks_both_sides_and_batch():
    p = DEFAULT_PROFILE
    assert p.contains(720, 1280)
    assert p.contains(256, 256) and p.contains(1088, 1920)
    assert not p.contains(1104, 1920)  # taller than max
    assert not p.contains(720, 240)  # narrower than min
    assert not p.contains(720, 1280, batch=2)
    assert ShapeProfile((256, 256), (256, 256), (256, 256), batch=(1, 2, 4)).contains(
        256, 256, batch=4
    )


def test_round_trip_through_metadata_dict():
    p = ShapeProfile((256, 256), (720, 1280), (1088, 1920), batch=(1, 1, 2))
    d = p.to_dict()
    assert d == {
        "input": "input",
        "min": [1, 3, 256, 256],
        "opt": [1, 3, 720, 1280],
        "max": [2, 3, 1088, 1920],
    }
    assert ShapeProfile.from_dict(d) == p


@pytest.mark.parametrize(
    "record,fragment",
    [
        ({"min": [1, 3, 256, 256], "opt": [1, 3, 720, 1280]}, "not a shape profile"),
        (None, "not a shape profile"),
        ({"min": [1, 256, 256], "opt": [1, 720, 1280], "max": [1, 1088, 1920]}, "NCHW"),
        ({"min": [1, 3, 256, 256], "opt": [1, 1, 720, 1280], "max": [1, 3, 1088, 1920]}, "NCHW"),
        ({"min": [1, 3, 250, 256], "opt": [1, 3, 720, 1280], "max": [1, 3, 1088, 1920]}, "250"),
    ],
)
def test_from_dict_errors(record, fragment):
    with pytest.raises(ValueError, match=fragment):
        ShapeProfile.from_dict(record)


def test_cli_args_and_text():
    assert (
        DEFAULT_PROFILE.cli_args()
        == "--min-shape 256x256 --opt-shape 1280x720 --max-shape 1920x1088"
    )
    p = ShapeProfile((256, 256), (720, 1280), (1088, 1920), batch=(1, 2, 4))
    assert p.cli_args().endswith("--batch 1,2,4")
    assert str(DEFAULT_PROFILE) == "min 256x256, opt 1280x720, max 1920x1088 (WIDTHxHEIGHT)"
    assert "batch 1..4 (opt 2)" in str(p)


def test_profile_is_immutable():
    with pytest.raises(AttributeError):
        DEFAULT_PROFILE.min = (16, 16)
