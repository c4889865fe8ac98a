"""One plugin lookup convention everywhere, checked on the CPU from the sources.

TensorRT's ONNX parser finds a plugin with IPluginRegistry::getCreator(op_type, plugin_version,
plugin_namespace) (onnx-tensorrt, FallbackPluginImporter: plugin_version defaults to "1",
plugin_namespace to ""). So the node sllen writes (exporter and plugin rewrite), the C++
creator's name/version/namespace, and the namespace the creator is *registered under* must be
one triple: ("SllenAttention", "1", "sllen"). REGISTER_TENSORRT_PLUGIN registers under ""
(NvInferRuntime.h, PluginRegistrar), which the parser would not find for a node that says
"sllen" ("Plugin not found", NVIDIA/TensorRT#955).

What runs the registration itself is the ctest plugin_registry (runtime/csrc/tests/
test_plugin_registry.cpp: the plugin libraries against TensorRT's headers and a stub registry,
built when CMake gets -DTensorRT_INCLUDE_DIR). Whether a real libnvinfer files the creators of
the dynamic library's getCreators() under their getPluginNamespace() is for
scripts/trt-check.sh on a machine with TensorRT.
"""

from __future__ import annotations

import re
from pathlib import Path

import onnx
from onnx import helper
from tiny_onnx import write_onnx

from sllen.export import onnx_export as ox
from sllen.export.trt.onnx_info import PLUGIN_DOMAIN
from sllen.export.trt.plugin_rewrite import decomposed_to_plugin

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "runtime" / "csrc" / "plugin"


def _code(path: Path) -> str:
    """C++ source without its comments."""
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _constant(name: str) -> str:
    return re.search(rf'{name} = "([^"]*)"', _code(PLUGIN / "sllen_attention_plugin.h")).group(1)


TRIPLE = (_constant("kPluginName"), _constant("kPluginVersion"), _constant("kPluginNamespace"))


def test_the_triple_is_the_exporters() -> None:
    assert TRIPLE == ("SllenAttention", "1", "sllen")
    assert TRIPLE == (ox.PLUGIN_OP_TYPE, ox.PLUGIN_VERSION, ox.PLUGIN_DOMAIN)
    assert PLUGIN_DOMAIN == TRIPLE[2]


def test_the_creator_reports_the_triple() -> None:
    header = _code(PLUGIN / "sllen_attention_plugin.h")
    creator = header[header.index("class AttentionPluginCreator") :]
    for method, constant in (
        ("getPluginName", "kPluginName"),
        ("getPluginVersion", "kPluginVersion"),
        ("getPluginNamespace", "kPluginNamespace"),
    ):
        assert re.search(
            rf"{method}\(\) const noexcept override \{{ return {constant}; \}}", creator
        )


def test_registration_is_under_the_creators_own_namespace() -> None:
    source = _code(PLUGIN / "sllen_attention_plugin.cpp")
    header = _code(PLUGIN / "sllen_attention_plugin.h")
    # Not the macro that registers under "" ...
    assert "REGISTER_TENSORRT_PLUGIN" not in source + header
    assert 'registerCreator(creator, "")' not in source + header
    # ... but registerCreator(creator, creator.getPluginNamespace()), from a static initializer
    # of the self-registering library only.
    assert re.search(
        r"registry\.registerCreator\(creator, creator\.getPluginNamespace\(\)\)", header
    )
    static_part = source[source.index("#if !defined(SLLEN_PLUGIN_DYNAMIC)") :]
    static_part = static_part[: static_part.index("#endif")]
    assert "register_creator(*registry, creator)" in static_part
    assert "getPluginRegistry()" in static_part
    # The dynamic library exports the two entry points of a plugin shared library, with the
    # signatures of samples/trtexec/README.md, and registers nothing itself.
    dynamic = source[source.index("#if defined(SLLEN_PLUGIN_DYNAMIC)") :]
    assert re.search(
        r'extern "C" SLLEN_PLUGIN_EXPORT nvinfer1::IPluginCreatorInterface\* const\* '
        r"getCreators\(\s*int32_t& nbCreators\)",
        dynamic,
    )
    assert re.search(
        r'extern "C" SLLEN_PLUGIN_EXPORT void setLoggerFinder\(nvinfer1::ILoggerFinder\* finder\)',
        dynamic,
    )
    assert "registerCreator" not in dynamic


def test_the_rewritten_node_asks_for_the_triple(tmp_path) -> None:
    out = tmp_path / "p.onnx"
    decomposed_to_plugin(write_onnx(tmp_path / "a.onnx", attention=True), out)
    proto = onnx.load(str(out))
    (node,) = [n for n in proto.graph.node if n.domain == PLUGIN_DOMAIN]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    # What the parser reads: op_type, plugin_version, plugin_namespace (10.10+ may also take
    # the node's domain as the namespace: it is the same string).
    assert (node.op_type, attrs["plugin_version"].decode(), attrs["plugin_namespace"].decode()) == (
        TRIPLE
    )
    assert node.domain == TRIPLE[2]
    assert {(o.domain, o.version) for o in proto.opset_import} >= {(TRIPLE[2], 1)}


def test_cmake_runs_the_registry_test_when_it_has_headers() -> None:
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert "add_test(NAME plugin_registry" in cmake
    assert (
        "target_compile_definitions(sllen_attention_plugin_dynamic PRIVATE SLLEN_PLUGIN_DYNAMIC)"
        in (cmake)
    )
