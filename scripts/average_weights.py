"""Average the weights of several trained models of one preset (a "model soup").

    python scripts/average_weights.py soup.safetensors runs/a/last.safetensors \
        runs/b/last.safetensors                      # uniform
    python scripts/average_weights.py wise.safetensors sllen/weights/sllen-edge.safetensors:2 \
        runs/a/last.safetensors runs/b/last.safetensors   # relative weights after ':'

Averaging fine-tunes of one starting point (Wortsman et al. 2022, model soups; WiSE-FT when
the start itself is one of the ingredients) is a way to lower the spread between seeds
without training: docs/default-model.md records what it gave for the bundled model's
fine-tunes. Only floating-point tensors are averaged; every file must hold the same config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from sllen.model.io import load_weights, save_weights
from sllen.runtime.errors import InputError


def parse_ingredient(spec: str) -> tuple[Path, float]:
    """``PATH`` or ``PATH:WEIGHT`` (a positive relative weight; default 1)."""
    path, sep, weight = spec.rpartition(":")
    if not sep or not weight or "/" in weight:
        return Path(spec), 1.0
    try:
        value = float(weight)
    except ValueError:
        return Path(spec), 1.0
    if value <= 0:
        raise InputError(f"{spec}: the weight after ':' must be positive")
    return Path(path), value


def average(ingredients: list[tuple[Path, float]]) -> tuple[torch.nn.Module, list[float]]:
    """The first model with every floating tensor replaced by the weighted mean of all."""
    total = sum(w for _, w in ingredients)
    shares = [w / total for _, w in ingredients]
    first = load_weights(ingredients[0][0])
    states = [first.state_dict()] + [
        load_weights(p, expected=first.config).state_dict() for p, _ in ingredients[1:]
    ]
    mean = {
        k: sum(s * st[k] for s, st in zip(shares, states, strict=True))
        if v.is_floating_point()
        else v
        for k, v in states[0].items()
    }
    first.load_state_dict(mean)
    return first, shares


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the averaged .safetensors to write")
    ap.add_argument("weights", nargs="+", help="PATH or PATH:RELATIVE_WEIGHT, two or more")
    args = ap.parse_args(argv)
    try:
        if len(args.weights) < 2:
            raise InputError("give at least two weights files to average")
        ingredients = [parse_ingredient(s) for s in args.weights]
        model, shares = average(ingredients)
        recipe = ";".join(
            f"{p.name}:{s:.4f}" for (p, _), s in zip(ingredients, shares, strict=True)
        )
        save_weights(model, args.out, {"averaged_from": recipe})
    except (InputError, OSError) as e:  # WeightsError is an InputError
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({recipe})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
