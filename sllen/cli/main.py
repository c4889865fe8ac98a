"""`sllen`: the umbrella command; each subcommand is also its own console script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import sllen
from sllen.cli._errors import doc_help, run_app, user_errors
from sllen.cli.bench import bench_command
from sllen.cli.evaluate import eval_command
from sllen.cli.export import export_command
from sllen.cli.run import run_command
from sllen.cli.train import train_command
from sllen.runtime.errors import InputError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="SLLEN low-light enhancement: train, evaluate, export, run, bench.",
)
for _name, _command in (
    ("train", train_command),
    ("eval", eval_command),
    ("export", export_command),
    ("run", run_command),
    ("bench", bench_command),
):
    app.command(_name, help=doc_help(_command))(_command)


@app.command("samples")
@user_errors
def samples_command(
    out: Annotated[Path, typer.Argument(help="Folder to create (low/ and high/ inside).")],
    count: Annotated[int, typer.Option(help="Number of image pairs.")] = 8,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "320x240",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1234,
) -> None:
    """Write generated scenes and their synthetic low-light versions (a paired folder)."""
    from sllen.data.samples import write_sample_pairs

    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must look like 320x240, not {size!r}") from None
    folder = write_sample_pairs(out, count, (h, w), seed)
    typer.echo(f"wrote {count} pair{'' if count == 1 else 's'} to {folder}")


@app.command("info")
@user_errors
def info_command(
    weights: Annotated[Path, typer.Argument(help="A .safetensors weights file.")],
) -> None:
    """Show a weights file's model config and training metadata."""
    from sllen.weights.header import read_config, read_metadata  # no torch needed

    cfg = read_config(weights)
    typer.echo(f"{weights}: {cfg.variant}, preset {cfg.preset}")
    for k, v in cfg.to_dict().items():
        typer.echo(f"  {k}: {v}")
    meta = read_metadata(weights)
    for k, v in meta.items():
        if k not in ("sllen_config", "train_config"):
            typer.echo(f"  [{k}] {v}")
    if "train_config" in meta:  # what sllen-train ran with: the run can be repeated from it
        typer.echo("training config:")
        try:
            for k, v in json.loads(meta["train_config"]).items():
                typer.echo(f"  {k}: {v}")
        except (ValueError, AttributeError):
            typer.echo(f"  {meta['train_config']}")


@app.callback(invoke_without_command=True)
def _version(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(f"sllen {sllen.__version__}")
        raise typer.Exit()


def main(argv: list[str] | None = None) -> None:
    """The `sllen` console script: `sllen run --ray` takes an optional address, as
    `sllen-run` does (click cannot express that; see sllen.cli.run._ray_argv)."""
    import sys

    from sllen.cli.run import _ray_argv

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"]:
        args = ["run", *_ray_argv(args[1:])]
    run_app(app, args, prog_name="sllen")
