"""What real TensorRT installations answered (scripts/trt-check.sh), kept as test data.

Each folder tests/export/data/trt_check/<tensorrt>-<gpu>/ holds one run's trt_check.json and
layers/ (the engine inspector's listings), copied there as `scripts/gpu/trt_check.py merge`
prints. For every recorded run:
- the plugin the static library registers is found under (SllenAttention, 1, sllen) and not
  under "", so the project's lookup convention holds on that TensorRT;
- where the dynamic library was loaded through load_library, its creators were found under
  "sllen" too (if a TensorRT files them elsewhere, this fails and names it);
- every recorded listing parses, and attention_fusion() still gives the verdict recorded with
  it: a change of the fusion rules that reclassifies a real listing fails here (compare the
  listing by hand before updating the record);
- engines with the plugin built and, where run, matched the float64 reference.
No folder yet: nothing ran on TensorRT so far, and the test is skipped saying how to add one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sllen.export.trt.fusion import attention_fusion, parse_layer_info

RECORDS = Path(__file__).resolve().parents[1] / "data" / "trt_check"
QUESTION_STATUSES = {"PASS", "FAIL", "SKIP"}


def check_record(folder: Path) -> list[str]:
    """The problems with one recorded run (empty: all is well)."""
    problems: list[str] = []
    doc = json.loads((folder / "trt_check.json").read_text())
    if doc.get("schema") != 1:
        return [f"schema {doc.get('schema')!r} is not 1"]
    questions = doc.get("questions", {})
    for name, q in questions.items():
        if q.get("status") not in QUESTION_STATUSES:
            problems.append(f"{name}: status {q.get('status')!r}")
    static = questions.get("plugin_lookup_static", {})
    if static.get("status") in ("PASS", "FAIL"):
        found = static["answer"]["found"]
        if not found.get("sllen") or found.get("(empty)"):
            problems.append(f"static plugin library registered as {found}, not under 'sllen' only")
    dynamic = questions.get("plugin_lookup_dynamic", {})
    if dynamic.get("status") in ("PASS", "FAIL"):
        found = dynamic["answer"]["found"]
        if not found.get("sllen"):
            problems.append(
                f"TensorRT {doc.get('tensorrt')} filed the dynamic library's creators as {found}: "
                "the node's plugin_namespace 'sllen' does not find them"
            )
    listing = questions.get("fusion_listing", {})
    for entry in listing.get("answer", {}).get("listings", []):
        if not entry.get("file"):
            continue
        layers = parse_layer_info(json.loads((folder / entry["file"]).read_text()))
        verdict = attention_fusion(layers)
        if verdict != entry["verdict"]:
            problems.append(
                f"{entry['file']}: attention_fusion says {verdict}, recorded {entry['verdict']}"
            )
    engine = questions.get("plugin_engine", {})
    for case in engine.get("answer", {}).get("cases", []):
        err = case.get("max_abs_err")
        if not case.get("built") or (err is not None and err >= 1e-2):
            problems.append(f"plugin engine d={case.get('head_dim')}: {case}")
    return problems


FOLDERS = sorted(p.parent for p in RECORDS.glob("*/trt_check.json"))


@pytest.mark.skipif(
    not FOLDERS,
    reason="no recorded TensorRT run yet: run scripts/trt-check.sh --out DIR where TensorRT and a "
    "GPU are, then copy DIR/trt_check.json and DIR/layers to "
    "tests/export/data/trt_check/<tensorrt>-<gpu>/ (docs/deploy-jetson.md)",
)
@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_recorded_run(folder: Path) -> None:
    assert check_record(folder) == []


def _record(tmp_path: Path, static_found: dict, verdict: str) -> Path:
    layers = tmp_path / "layers"
    layers.mkdir(parents=True)
    listing = json.loads(
        (
            Path(__file__).resolve().parents[1] / "data" / "layers_trt10_detailed_fused.json"
        ).read_text()
    )
    (layers / "l.json").write_text(json.dumps(listing))
    doc = {
        "schema": 1,
        "tensorrt": "10.3.0",
        "questions": {
            "plugin_lookup_static": {"status": "PASS", "answer": {"found": static_found}},
            "fusion_listing": {
                "status": "PASS",
                "answer": {"listings": [{"file": "layers/l.json", "verdict": verdict}]},
            },
            "plugin_engine": {
                "status": "PASS",
                "answer": {"cases": [{"head_dim": 64, "built": True, "max_abs_err": 1e-3}]},
            },
        },
    }
    (tmp_path / "trt_check.json").write_text(json.dumps(doc))
    return tmp_path


def test_the_reader_on_made_up_records(tmp_path) -> None:
    good = _record(tmp_path / "good", {"sllen": True, "(empty)": False}, "fused")
    assert check_record(good) == []
    bad = _record(tmp_path / "bad", {"sllen": False, "(empty)": True}, "unfused")
    problems = check_record(bad)
    assert len(problems) == 2
    assert "not under 'sllen'" in problems[0] and "attention_fusion says fused" in problems[1]
