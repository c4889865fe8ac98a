"""Weights files: round trip, and one clear error for every kind of bad file."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sllen.config import get_preset
from sllen.model.io import WeightsError, load_weights, read_config, save_weights
from sllen.model.sllen import SLLEN


@pytest.fixture
def saved(tmp_path: Path) -> tuple[SLLEN, Path]:
    torch.manual_seed(0)
    model = SLLEN(get_preset("tiny", use_rsaeb=False)).eval()
    return model, save_weights(model, tmp_path / "w.safetensors", {"note": "x"})


def test_round_trip(saved: tuple[SLLEN, Path]) -> None:
    model, path = saved
    loaded = load_weights(path)
    assert loaded.config == model.config
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert read_config(path).variant == "SLLEN-2"
    assert not list(path.parent.glob("*.tmp"))  # nothing half-written left behind


def test_fp16_storage_loads_as_float32(tmp_path: Path) -> None:
    model = SLLEN(get_preset("tiny")).eval()
    path = save_weights(model, tmp_path / "h.safetensors", dtype=torch.float16)
    loaded = load_weights(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x), atol=2e-3, rtol=0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "none.safetensors")


def test_truncated_file(saved: tuple[SLLEN, Path], tmp_path: Path) -> None:
    _, path = saved
    data = path.read_bytes()
    for n in (len(data) - 100, 40, 3):
        bad = tmp_path / f"trunc{n}.safetensors"
        bad.write_bytes(data[:n])
        with pytest.raises(WeightsError):
            load_weights(bad)


def test_not_a_weights_file(tmp_path: Path) -> None:
    bad = tmp_path / "photo.safetensors"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_weights(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"a": torch.zeros(2)}, str(foreign))
    with pytest.raises(WeightsError, match="no sllen model config"):
        load_weights(foreign)


def test_wrong_preset_is_refused(saved: tuple[SLLEN, Path]) -> None:
    _, path = saved
    with pytest.raises(WeightsError, match="holds a 'tiny' model, expected 'edge'"):
        load_weights(path, expected=get_preset("edge"))
    from sllen.config import widths

    tiny = get_preset("tiny")
    wider = tiny.replace(use_hsbab=False, **widths(tiny, 1.5))
    with pytest.raises(WeightsError, match=r"other options .*the options: --no-hsbab.*--width\)"):
        load_weights(path, expected=wider)


def test_tensor_shapes_and_names_are_checked(tmp_path: Path) -> None:
    model = SLLEN(get_preset("tiny"))
    meta = {"sllen_config": model.config.to_json()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(iter(state))
    wrong_shape = dict(state, **{key: torch.zeros(3)})
    save_file(wrong_shape, str(tmp_path / "shape.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="has shape"):
        load_weights(tmp_path / "shape.safetensors")
    missing = {k: v for k, v in state.items() if k != key}
    save_file(missing, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="missing"):
        load_weights(tmp_path / "missing.safetensors")
    bad_cfg = {"sllen_config": json.dumps({"encoder_channels": [4]})}
    save_file(state, str(tmp_path / "cfg.safetensors"), metadata=bad_cfg)
    with pytest.raises(WeightsError, match="invalid model config"):
        load_weights(tmp_path / "cfg.safetensors")


def _disk_full(tensors: object, filename: str, metadata: object = None) -> None:
    """safetensors on a full disk: part of the file written, then its own error type."""
    from safetensors import SafetensorError

    Path(filename).write_bytes(b"\0" * 100)
    raise SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)"
    )


def test_a_full_disk_is_one_line_naming_the_file(
    saved: tuple[SLLEN, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was SafetensorError, which the CLI showed as a bug (exit 1).
    from sllen.model import io
    from sllen.runtime.errors import SllenError

    model, path = saved
    before = path.read_bytes()
    monkeypatch.setattr(io, "save_file", _disk_full)
    with pytest.raises(io.WriteError) as info:
        save_weights(model, path)
    assert str(info.value) == f"{path}: cannot write (No space left on device)"
    assert isinstance(info.value, SllenError) and isinstance(info.value, OSError)
    assert info.value.errno == 28
    assert path.read_bytes() == before  # the last good file stays; no temporary file
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_other_write_failures_name_the_file(tmp_path: Path) -> None:
    from sllen.model import io

    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "w.safetensors"
    with pytest.raises(io.WriteError, match=r"afile/w.safetensors: cannot write \(File exists"):
        save_weights(SLLEN(get_preset("tiny")), target)


def test_a_safetensors_error_of_another_kind_is_left_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors import SafetensorError

    from sllen.model import io

    def refuses(*args: object, **kwargs: object) -> None:
        raise SafetensorError("invalid tensor")  # no (os error N): sllen's bug, not the disk

    monkeypatch.setattr(io, "save_file", refuses)
    with pytest.raises(SafetensorError, match="invalid tensor"):
        save_weights(SLLEN(get_preset("tiny")), tmp_path / "w.safetensors")
    assert not list(tmp_path.iterdir())
