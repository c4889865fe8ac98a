"""--init-weights: a file whose network differs from this run's is refused in the words of
sllen-train's options (the model file's own check names config fields, some of which no
option sets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sllen.config import ModelConfig
from sllen.model.io import INFERENCE_ONLY, OPTION_OF, read_config
from sllen.runtime.errors import InputError


def _a(word: str) -> str:
    return f"an '{word}'" if word[:1].lower() in "aeiou" else f"a '{word}'"


def _value(value: Any) -> str:
    return f"({', '.join(map(str, value))})" if isinstance(value, (list, tuple)) else str(value)


def check_init_weights(path: Path, expected: ModelConfig) -> None:
    """Refuse --init-weights whose network is not the one this run builds: another preset
    (say which to give), or other options (name them, with both values)."""
    saved = read_config(path)
    if saved.preset != expected.preset:
        raise InputError(
            f"--init-weights {path} holds {_a(saved.preset)} model and this run builds "
            f"{_a(expected.preset)} one: give --preset {saved.preset} (and the options the "
            "weights were trained with)"
        )
    mine, theirs = expected.to_dict(), saved.to_dict()
    diff = [k for k in mine if k not in INFERENCE_ONLY and mine[k] != theirs.get(k)]
    if not diff:
        return
    options: dict[str, str] = {}  # one line per option (--width sets three fields)
    fields = []
    for k in diff:
        both = f"{k} {_value(theirs.get(k))}, this run {_value(mine[k])}"
        if k in OPTION_OF:
            options.setdefault(OPTION_OF[k], f"{OPTION_OF[k]} (the weights have {both})")
        else:
            fields.append(both)
    parts = []
    if options:
        parts.append(f"give the options they were trained with: {'; '.join(options.values())}")
    if fields:  # no option sets these: the file was made another way (a custom config)
        parts.append(f"the weights were trained with {'; '.join(fields)}")
    raise InputError(
        f"--init-weights {path} holds {_a(saved.preset)} model built otherwise than this run's: "
        + "; ".join(parts)
    )
