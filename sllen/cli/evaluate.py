"""sllen-eval: PSNR/SSIM/LOE of a model on a paired or unpaired image folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sllen.cli._errors import user_errors

Opt = typer.Option


@user_errors
def eval_command(
    data: Annotated[Path, Opt(help="Folder: low/ + high/ (or LOL, LSRW) or plain images.")],
    weights: Annotated[
        Path | None, Opt(help="Model weights (.safetensors). Default: the bundled model.")
    ] = None,
    json_out: Annotated[Path | None, Opt("--json", help="Write the report here.")] = None,
    save_dir: Annotated[Path | None, Opt(help="Save enhanced images here.")] = None,
    device: Annotated[str, Opt(help="cpu or cuda.")] = "cpu",
) -> None:
    """Score a model on a folder and print a table (paired: PSNR, SSIM, LOE; unpaired: LOE)."""
    from sllen.evaluate import evaluate, torch_enhancer, write_json

    console = Console()
    enhance, name = torch_enhancer(weights, device)
    report = evaluate(enhance, data, model_name=name, save_dir=save_dir)
    table = Table(title=f"{name} on {data}")
    keys = ["psnr", "ssim", "loe"] if report.paired else ["loe"]
    table.add_column("image")
    for k in keys:
        table.add_column(k.upper(), justify="right")
    fmt = {"psnr": "{:.2f}", "ssim": "{:.4f}", "loe": "{:.1f}"}
    for row in report.rows:
        table.add_row(row["name"], *(fmt[k].format(row[k]) for k in keys))
    table.add_section()
    table.add_row(
        f"mean ({len(report.rows)})", *(fmt[k].format(report.means[k]) for k in keys), style="bold"
    )
    console.print(table)
    if json_out is not None:
        console.print(f"report: {write_json(report, json_out)}")


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(eval_command)
    app()


if __name__ == "__main__":
    main()
