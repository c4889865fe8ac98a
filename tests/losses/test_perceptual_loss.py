import datetime
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sllen.losses import (
    PerceptualLoss,
    VGG16Features,
    convert_vgg16_to_safetensors,
    load_vgg16_features,
    read_vgg16_state_dict,
)
from sllen.runtime.errors import InputError

# torchvision.models.vgg16().features: conv indices and (out, in) channels
TORCHVISION_CONVS = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
    14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512),
    26: (512, 512), 28: (512, 512),
}  # fmt: skip


@pytest.fixture(scope="module")
def vgg_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in VGG16Features().state_dict().items()}


@pytest.fixture(scope="module")
def full_pth(tmp_path_factory, vgg_state) -> Path:
    """A torchvision-style full vgg16 state dict: features.* plus classifier.*."""
    path = tmp_path_factory.mktemp("vgg") / "vgg16-full.pth"
    full = dict(vgg_state)
    full["classifier.0.weight"] = torch.zeros(8, 4)  # real one is 4096 x 25088; ignored anyway
    full["classifier.0.bias"] = torch.zeros(8)
    torch.save(full, path)
    return path


def _images(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)


def test_layout_matches_torchvision_vgg16_features():
    model = VGG16Features()
    assert len(model.features) == 31
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {}
    for i, (cout, cin) in TORCHVISION_CONVS.items():
        expected[f"features.{i}.weight"] = (cout, cin, 3, 3)
        expected[f"features.{i}.bias"] = (cout,)
    assert shapes == expected  # normalisation buffers are not in the state dict
    pools = [i for i, m in enumerate(model.features) if isinstance(m, nn.MaxPool2d)]
    assert pools == [4, 9, 16, 23, 30]


def test_zero_for_identical_inputs_and_positive_otherwise(vgg_state):
    model = VGG16Features()
    model.load_state_dict(vgg_state)
    loss = PerceptualLoss(model)
    a, b = _images()
    assert float(loss(a, a)) == 0.0
    assert float(loss(a, b)) > 0.0


def test_frozen_eval_and_gradient_reaches_enhanced_only(vgg_state):
    model = VGG16Features()
    model.load_state_dict(vgg_state)
    loss = PerceptualLoss(model).train()
    assert not loss.features.training
    assert not any(p.requires_grad for p in loss.parameters())
    a, b = _images()
    a.requires_grad_(True)
    loss(a, b).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_forward_stops_after_the_last_needed_layer():
    model = VGG16Features()
    calls: list[int] = []
    for i, layer in enumerate(model.features):
        layer.register_forward_hook(lambda *_, i=i: calls.append(i))
    feats = model(torch.rand(1, 3, 16, 16), ["relu2_2", "relu1_2"])
    assert max(calls) == 8
    assert [f.shape[1] for f in feats] == [128, 64]  # in the order asked


def test_loads_full_torchvision_pth_with_weights_only(full_pth, vgg_state):
    model = load_vgg16_features(full_pth)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, vgg_state[k])


def test_loads_pth_without_features_prefix(tmp_path, vgg_state):
    path = tmp_path / "features-only.pth"
    torch.save({k.removeprefix("features."): v for k, v in vgg_state.items()}, path)
    assert torch.equal(load_vgg16_features(path).features[28].bias, vgg_state["features.28.bias"])


def test_loads_safetensors_and_converts(tmp_path, full_pth, vgg_state):
    direct = tmp_path / "direct.safetensors"
    save_file(vgg_state, str(direct))
    assert torch.equal(
        load_vgg16_features(direct).features[0].weight, vgg_state["features.0.weight"]
    )
    converted = convert_vgg16_to_safetensors(full_pth, tmp_path / "vgg16.safetensors")
    state = read_vgg16_state_dict(converted)
    assert set(state) == set(vgg_state)  # classifier keys dropped, torchvision names kept
    assert all(torch.equal(state[k], vgg_state[k]) for k in state)


def test_from_file_none_turns_the_term_off(full_pth):
    assert PerceptualLoss.from_file(None) is None
    loss = PerceptualLoss.from_file(full_pth, layers=["relu1_2"])
    assert isinstance(loss, PerceptualLoss) and loss.layers == ("relu1_2",)


def _assert_one_line_error(path: Path, match: str) -> None:
    # InputError: bad input the command line reports in one line with exit 2, not a bug
    with pytest.raises(InputError, match=match) as info:
        load_vgg16_features(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_is_a_value_error(tmp_path, vgg_state, suffix):
    good = tmp_path / f"good{suffix}"
    if suffix == ".pth":
        torch.save(vgg_state, good)
    else:
        save_file(vgg_state, str(good))
    bad = tmp_path / f"truncated{suffix}"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _assert_one_line_error(bad, "truncated")


def test_wrong_shape_missing_keys_missing_file_and_pickled_objects(tmp_path, vgg_state):
    wrong = dict(vgg_state)
    wrong["features.0.weight"] = torch.zeros(64, 1, 3, 3)  # a grayscale first layer
    torch.save(wrong, tmp_path / "wrong.pth")
    _assert_one_line_error(tmp_path / "wrong.pth", r"features\.0\.weight \(64, 1, 3, 3\)")

    missing = {k: v for k, v in vgg_state.items() if not k.startswith("features.28.")}
    save_file(missing, str(tmp_path / "missing.safetensors"))
    _assert_one_line_error(tmp_path / "missing.safetensors", "missing 2 of 26 keys")

    _assert_one_line_error(tmp_path / "absent.pth", "not found")

    torch.save({"when": datetime.date(2024, 1, 1)}, tmp_path / "pickled.pth")
    _assert_one_line_error(tmp_path / "pickled.pth", "weights_only")


def test_files_that_are_not_weights_at_all_are_bad_input(tmp_path):
    # what a user may name by mistake: a text file, a file named .safetensors that is not one
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    _assert_one_line_error(tmp_path / "passwd", "not VGG16 weights")
    # a photograph: it was called a pickle "of objects other than tensors"
    (tmp_path / "night.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64))
    _assert_one_line_error(tmp_path / "night.jpg", "neither a .safetensors file nor a torch")
    (tmp_path / "fake.safetensors").write_text("not weights")
    _assert_one_line_error(tmp_path / "fake.safetensors", "unreadable or truncated")


def test_bad_layer_configuration():
    with pytest.raises(ValueError, match="layers"):
        PerceptualLoss(VGG16Features(), layers=["conv9_9"])
    with pytest.raises(ValueError, match="layer_weights"):
        PerceptualLoss(VGG16Features(), layers=["relu1_2"], layer_weights=[1.0, 2.0])
