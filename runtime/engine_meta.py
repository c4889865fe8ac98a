"""Metadata that travels next to every TensorRT engine, the compatibility check, the engine cache.

A TensorRT engine only runs on the TensorRT version that built it (unless it was built version
compatible) and on the GPU architecture it was built for (unless built hardware compatible);
users otherwise meet "version tag does not match" or engines from a laptop that do not load on
an Orin. Every engine `model.engine` therefore has `model.engine.json` beside it with what it
was built from and for, and `check_compatible` refuses a mismatch with one line that says how
to rebuild on the machine at hand.

Pure Python, standard library only: the runtime can use this module without torch or onnx.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sllen.runtime.errors import InputError, MissingFileError, SllenError
from sllen.runtime.files import atomic_write, atomic_write_text

SCHEMA = 1
METADATA_SUFFIX = ".json"

PRECISIONS = ("fp32", "fp16", "int8")
ATTENTION_MODES = ("decomposed", "plugin")
HARDWARE_COMPATIBILITY = ("none", "ampere_plus", "same_compute_capability")

# Keys every metadata record carries (write_metadata refuses a record without them).
REQUIRED_KEYS = (
    "schema",
    "sllen_version",
    "tensorrt_version",
    "gpu_name",
    "compute_capability",
    "precision",
    "int8_flavour",
    "attention",
    "profile",
    "onnx_sha256",
    "onnx_file",
    "build_time",
    "plugin_library",
    "version_compatible",
    "hardware_compatibility",
    "dla_core",
)


class EngineIncompatibleError(SllenError, RuntimeError):
    """The engine was built for another TensorRT version or GPU; the message says how to rebuild."""


# --------------------------------------------------------------------------- files


def onnx_sha256(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """SHA-256 (hex) of an ONNX file, and of its external-data file `<name>.data` if present.

    torch's dynamo exporter writes weights to `model.onnx.data` by default; hashing only the
    graph file would miss a change of weights, so the sidecar is hashed too when it exists.
    """
    path = Path(path)
    digest = hashlib.sha256()
    for part in (path, path.with_name(path.name + ".data")):
        if part is path or part.is_file():
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(chunk_size), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def metadata_path(engine_path: str | os.PathLike[str]) -> Path:
    """`model.engine` -> `model.engine.json`."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + METADATA_SUFFIX)


def validate_metadata(meta: Mapping[str, Any]) -> None:
    """Raise ValueError (one line) if `meta` lacks a key or holds an unknown value."""
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise InputError(f"engine metadata lacks {', '.join(missing)}")
    if meta["schema"] != SCHEMA:
        raise InputError(f"engine metadata schema {meta['schema']!r} is not {SCHEMA}")
    if meta["precision"] not in PRECISIONS:
        raise InputError(f"precision {meta['precision']!r} is not one of {', '.join(PRECISIONS)}")
    attention = meta["attention"]
    if not isinstance(attention, Mapping) or attention.get("mode") not in ATTENTION_MODES:
        raise InputError(
            f"attention must be {{'mode': one of {', '.join(ATTENTION_MODES)}, 'fused': "
            f"true/false/null}}, got {attention!r}"
        )
    if meta["hardware_compatibility"] not in HARDWARE_COMPATIBILITY:
        raise InputError(
            f"hardware_compatibility {meta['hardware_compatibility']!r} is not one of "
            f"{', '.join(HARDWARE_COMPATIBILITY)}"
        )


def write_metadata(engine_path: str | os.PathLike[str], meta: Mapping[str, Any]) -> Path:
    """Validate and write `meta` atomically to `<engine>.json`; return that path."""
    validate_metadata(meta)
    text = json.dumps(dict(meta), indent=2, sort_keys=True) + "\n"
    return atomic_write_text(metadata_path(engine_path), text)


def read_metadata(engine_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read `<engine>.json`; a missing or broken file raises with the rebuild hint."""
    path = metadata_path(engine_path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError(
            f"{path} is missing: an engine without its metadata cannot be checked; rebuild it "
            "with `sllen-export --from-onnx <model.onnx>` on this machine"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path} does not hold a JSON object")
    try:
        validate_metadata(meta)
    except InputError as exc:  # not sllen-export's file, or an older schema: say what fixes it
        raise InputError(
            f"{path}: {exc}; rebuild the engine with `sllen-export --from-onnx <model.onnx>` "
            "on this machine"
        ) from None
    return meta


# --------------------------------------------------------------------------- compatibility


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in str(version).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise InputError(f"not a version number: {version!r}")
    return tuple(parts)


def cc_tuple(cc: str | tuple[int, int]) -> tuple[int, int]:
    if isinstance(cc, tuple):
        return int(cc[0]), int(cc[1])
    major, _, minor = str(cc).partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        raise InputError(f"not a compute capability: {cc!r} (expected e.g. '8.7')") from None


def engine_platform() -> str:
    """This machine's OS and CPU architecture, as an engine's metadata records them ("Linux
    aarch64"): TensorRT engines do not move between platforms."""
    return f"{platform.system()} {platform.machine()}"


def format_cc(cc: str | tuple[int, int]) -> str:
    """(8, 7) or "8.7" -> "8.7"."""
    major, minor = cc_tuple(cc)
    return f"{major}.{minor}"


def rebuild_command(meta: Mapping[str, Any]) -> str:
    """The `sllen-export` command line that rebuilds this engine from its ONNX file.

    Only flags sllen-export has: the profile, the plugin, DLA and version compatibility.
    """
    profile = meta.get("profile") or {}
    args = [f"sllen-export --from-onnx {meta.get('onnx_file') or '<model.onnx>'}"]
    try:
        mn, op, mx = profile["min"], profile["opt"], profile["max"]
        args.append(
            f"--min-shape {mn[3]}x{mn[2]} --opt-shape {op[3]}x{op[2]} --max-shape {mx[3]}x{mx[2]}"
        )
    except (KeyError, IndexError, TypeError):
        pass
    if meta.get("plugin_library"):
        args.append(f"--plugin {meta['plugin_library']}")
    if meta.get("dla_core") is not None:
        args.append(f"--dla-core {meta['dla_core']}")
    if meta.get("version_compatible"):
        args.append("--version-compatible")
    return " ".join(args)


def check_compatible(
    meta: Mapping[str, Any],
    trt_version: str,
    gpu_name: str,
    compute_capability: str | tuple[int, int],
) -> None:
    """Refuse (EngineIncompatibleError, one line) an engine this machine cannot run.

    Platform (OS and CPU architecture, where the metadata records it): must be this machine's.
    TensorRT version: must equal the build version exactly, unless the engine was built version
    compatible; then the runtime may be the same or newer within the major version, or an 11.x
    runtime for a 10.x engine, never older (TensorRT's support matrix, "Engine Portability").
    Compute capability: must equal the build GPU's, unless the engine was built
    hardware compatible with AMPERE_PLUS (any GPU of compute capability 8.0 or newer). A different
    GPU name with the same compute capability only warns: TensorRT may run it, slower.
    """
    validate_metadata(meta)
    how = f"rebuild it on this machine with `{rebuild_command(meta)}`"
    built_on, here = meta.get("platform"), engine_platform()
    if built_on and built_on != here:
        raise EngineIncompatibleError(
            f"engine was built on {built_on}, this machine is {here} (engines do not move "
            f"between platforms); {how}"
        )
    built_trt = str(meta["tensorrt_version"])
    if meta["version_compatible"]:
        built_v, here_v = _version_tuple(built_trt), _version_tuple(trt_version)
        if here_v < built_v:
            raise EngineIncompatibleError(
                f"engine was built with TensorRT {built_trt}, newer than this machine's "
                f"{trt_version} (version-compatible engines only run on the same or newer "
                f"TensorRT); {how}"
            )
        if here_v[0] != built_v[0] and (built_v[0], here_v[0]) != (10, 11):
            raise EngineIncompatibleError(
                f"engine was built version compatible with TensorRT {built_trt}, which TensorRT "
                f"{trt_version} does not run (across major versions only 10.x engines on 11.x); "
                f"{how}"
            )
    elif str(trt_version) != built_trt:
        raise EngineIncompatibleError(
            f"engine was built with TensorRT {built_trt}, this machine has TensorRT "
            f"{trt_version}; {how}"
        )
    built_cc = cc_tuple(meta["compute_capability"])
    here_cc = cc_tuple(compute_capability)
    level = meta["hardware_compatibility"]
    if level == "ampere_plus":
        if here_cc < (8, 0):
            raise EngineIncompatibleError(
                f"engine was built hardware compatible for Ampere or newer (compute capability "
                f">= 8.0), this GPU {gpu_name} has {format_cc(here_cc)}; {how}"
            )
    elif here_cc != built_cc:
        raise EngineIncompatibleError(
            f"engine was built for {meta['gpu_name']} (compute capability "
            f"{format_cc(built_cc)}), this GPU is {gpu_name} ({format_cc(here_cc)}); {how}"
        )
    elif level == "none" and gpu_name != meta["gpu_name"]:
        warnings.warn(
            f"engine was built on {meta['gpu_name']}, running on {gpu_name} (same compute "
            f"capability {format_cc(here_cc)}): it may run slower; {how} for best speed",
            stacklevel=2,
        )


# --------------------------------------------------------------------------- cache


def cache_key(
    onnx_sha256: str,
    precision: str,
    profile: Mapping[str, Any],
    trt_version: str,
    compute_capability: str | tuple[int, int],
    *,
    gpu_name: str | None = None,
    dla_core: int | None = None,
    version_compatible: bool = False,
    hardware_compatibility: str = "none",
    plugin_sha256: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A short stable key for one engine build: equal inputs give the same key, any change another.

    `profile` is `ShapeProfile.to_dict()`; `gpu_name` is the GPU's name as CUDA reports it
    (two GPUs of one compute capability, an RTX 3090 and an A10, get different tactics, so an
    engine tuned on one is not the other's; sllen-export always passes it); `plugin_sha256` is
    the hash of the plugin library (a rebuilt plugin needs a rebuilt engine); `extra` holds
    anything else that changes the engine (workspace size, builder options). Key version 2
    added the GPU name, version 3 the metadata's platform and plugins_serialized (a cached
    engine's metadata is copied as it was stored, and the runtime reads them): engines cached
    under older keys are rebuilt once.
    """
    record = {
        "key_version": 3,
        "onnx_sha256": onnx_sha256,
        "precision": precision,
        "profile": dict(profile),
        "tensorrt_version": str(trt_version),
        "gpu_name": None if gpu_name is None else str(gpu_name),
        "compute_capability": format_cc(compute_capability),
        "dla_core": dla_core,
        "version_compatible": bool(version_compatible),
        "hardware_compatibility": hardware_compatibility,
        "plugin_sha256": plugin_sha256,
        "extra": dict(extra or {}),
    }
    blob = json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


class EngineCache:
    """A folder of engines named by `cache_key`: `<key>.engine` beside `<key>.engine.json`.

    `lookup(key)` gives the cached engine when both files are there and the metadata is whole;
    `store(key, engine_path)` copies a freshly built engine and its metadata in atomically, so a
    crash mid-copy never leaves a half engine that a later lookup would return.
    """

    ENGINE_SUFFIX = ".engine"

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path_for(self, key: str) -> Path:
        """Where the engine for `key` lives in the cache."""
        if not key or any(ch in key for ch in "/\\") or key.startswith("."):
            raise InputError(f"not a cache key: {key!r}")
        return self.folder / f"{key}{self.ENGINE_SUFFIX}"

    def lookup(self, key: str) -> Path | None:
        """The cached engine for `key`, or None when it is absent or incomplete."""
        engine = self.path_for(key)
        if not engine.is_file():
            return None
        try:
            meta = read_metadata(engine)
        except (OSError, ValueError):
            return None
        if meta.get("cache_key", key) != key:
            return None
        return engine

    def store(self, key: str, engine_path: str | os.PathLike[str]) -> Path:
        """Copy `engine_path` and its `<engine>.json` into the cache under `key`."""
        source = Path(engine_path)
        meta = read_metadata(source)
        meta["cache_key"] = key
        target = self.path_for(key)

        def copy(tmp: Path) -> None:
            shutil.copyfile(source, tmp)
            # Drop the old metadata before the rename: lookup needs both files, so while the
            # engine is being swapped a reader sees a miss, never a new engine with stale
            # metadata.
            metadata_path(target).unlink(missing_ok=True)

        atomic_write(target, copy)
        write_metadata(target, meta)
        return target
