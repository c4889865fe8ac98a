"""sllen-eval: PSNR/SSIM/LOE and colour faults of a model (and baselines) on an image folder."""

from __future__ import annotations

import math
import statistics
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sllen.cli._errors import run_single, user_errors
from sllen.metrics.psnr_ssim import PSNR_MAX_DB
from sllen.runtime.errors import InputError, install_hint

Opt = typer.Option

COLUMNS = {  # key: (header, format)
    "psnr": ("PSNR dB", "{:.2f}"),
    "ssim": ("SSIM", "{:.3f}"),
    "psnr_gt_mean": ("PSNR gm", "{:.2f}"),
    "ssim_gt_mean": ("SSIM gm", "{:.3f}"),
    "loe": ("LOE", "{:.0f}"),
    "saturation_ratio": ("saturation", "{:.2f}"),
    "color_cast": ("cast", "{:.1f}"),
    "brightness_slope": ("bright. slope", "{:.2f}"),
    "chroma_noise_ratio": ("chroma noise", "{:.2f}"),
    "edge_ratio": ("edges kept", "{:.2f}"),
}


def _cell(key: str, value: float) -> str:
    """A summary cell; a measure one image cannot give (the slope) reads "n/a", not "nan"."""
    return "n/a" if math.isnan(value) else COLUMNS[key][1].format(value)


QUALITY = ("psnr", "ssim", "psnr_gt_mean", "ssim_gt_mean", "loe")
PER_IMAGE = ("psnr", "ssim", "psnr_gt_mean", "loe")
GT_MEAN_NOTE = (
    "gm = GT-mean: each output scaled to its ground truth's mean grey first (exposure set "
    "aside; PSNR and SSIM are unscaled, as in the paper)"
)


@user_errors
def eval_command(
    data: Annotated[
        Path | None,
        Opt(help="Folder: low/ + high/ (or normal/; LOL, LSRW) or plain images."),
    ] = None,
    evalset: Annotated[
        bool, Opt("--evalset", help="Use the built-in evaluation set (darkened photographs).")
    ] = False,
    well_lit: Annotated[
        bool,
        Opt(
            "--well-lit",
            help="Use the built-in photographs well lit (as they are, 1 and 2 stops under): "
            "how much the model changes an image that needs little.",
        ),
    ] = False,
    model: Annotated[
        Path | None,
        Opt(
            help="The file to score: .safetensors (PyTorch), .onnx (ONNX Runtime: FP32, FP16, "
            "INT8) or .engine (TensorRT), run as sllen-run runs it. Default: the bundled model."
        ),
    ] = None,
    weights: Annotated[
        Path | None, Opt(help="Model weights (.safetensors), scored in PyTorch (as --model).")
    ] = None,
    backend: Annotated[
        str, Opt(help="auto, tensorrt, onnxruntime or pytorch (with --model).")
    ] = "auto",
    baselines: Annotated[
        bool, Opt("--baselines", help="Also score automatic gamma and CLAHE.")
    ] = False,
    well_exposed: Annotated[
        str,
        Opt(
            help="keep (as sllen-run): an input already well exposed passes through, a dim "
            "one partly; enhance: the model's result alone.",
        ),
    ] = "keep",
    self_ensemble: Annotated[
        bool,
        Opt(
            "--self-ensemble",
            help="Score the mean of four flipped inferences per image (as sllen-run's option).",
        ),
    ] = False,
    per_image: Annotated[bool, Opt("--per-image", help="Print every image's scores.")] = False,
    json_out: Annotated[Path | None, Opt("--json", help="Write the report here.")] = None,
    save_dir: Annotated[Path | None, Opt(help="Save enhanced images here.")] = None,
    device: Annotated[
        str,
        Opt(
            help="auto, cpu, cuda or cuda:N. auto: --weights (and the bundled PyTorch model) "
            "run on the CPU, for the same numbers everywhere; --model files as sllen-run runs "
            "them."
        ),
    ] = "auto",
    threads: Annotated[int | None, Opt(help="CPU threads for inference.")] = None,
) -> None:
    """Score a model on a folder: paired (PSNR, SSIM, LOE, colour faults) or unpaired (LOE)."""
    import importlib.util

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from sllen.evaluate import Enhancer, evaluate, runtime_enhancer, torch_enhancer, write_json
    from sllen.runtime.backends.base import check_device
    from sllen.runtime.files import check_output_file, check_output_folder
    from sllen.runtime.well_exposed import check_mode

    if (data is not None) + evalset + well_lit != 1:
        raise InputError("give one of --data DIR, --evalset or --well-lit")
    if model is not None and weights is not None:
        raise InputError("give --model or --weights, not both")
    if threads is not None and threads < 1:
        raise InputError("--threads must be at least 1")
    if weights is not None and backend != "auto":
        raise InputError("--backend applies to --model files; --weights runs in PyTorch")
    check_mode(well_exposed)  # before a model is loaded
    check_device(device)
    if json_out is not None:
        check_output_file(json_out, "--json")  # not after minutes of scoring
    if save_dir is not None:
        check_output_folder(save_dir, "--save-dir")
    console = Console()
    has_torch = importlib.util.find_spec("torch") is not None
    if weights is not None or (model is None and backend == "auto" and has_torch):
        # The PyTorch model itself: what training produced, on the CPU unless asked.
        dev = "cpu" if device == "auto" else device
        enhance, name = torch_enhancer(weights, dev, threads, well_exposed, self_ensemble)
    else:  # a deployed file (or, without torch, the bundled ONNX) through sllen.runtime
        enhance, name = runtime_enhancer(
            model, backend, device, threads, well_exposed, self_ensemble
        )
    name = f"{name}, --well-exposed {well_exposed}" + (", --self-ensemble" if self_ensemble else "")
    methods: dict[str, Enhancer] = {}
    descriptions: dict[str, str] = {}
    if baselines:
        from sllen.baselines import BASELINES

        if importlib.util.find_spec("skimage") is None:
            raise InputError(f"--baselines needs scikit-image (CLAHE): {install_hint('eval')}")

        methods.update(BASELINES)
        descriptions.update(gamma="automatic gamma (mean 0.45)", clahe="CLAHE on L*")
    methods["sllen"] = enhance
    descriptions["sllen"] = name
    status = Console(stderr=True)
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        # stderr: the bar is status, not the report; off a terminal none (rich still ended it
        # with a blank line there, before an error's one line too)
        console=status,
        transient=True,
        disable=not status.is_terminal,
    )
    with tempfile.TemporaryDirectory(prefix="sllen-evalset-") as tmp, progress:
        if evalset or well_lit:
            from sllen.evalset import CONDITIONS, WELL_LIT_CONDITIONS, write_evalset

            task = progress.add_task("darkening the evaluation photographs", total=None)
            data, notes = write_evalset(
                tmp, conditions=WELL_LIT_CONDITIONS if well_lit else CONDITIONS
            )
            progress.remove_task(task)
            for note in notes:
                console.print(f"[yellow]{note}")
        assert data is not None  # given, or the evaluation set just written
        task = progress.add_task(f"scoring {len(methods)} method(s)", total=None)
        report = evaluate(
            methods,
            data,
            descriptions,
            save_dir=save_dir,
            on_start=lambda n: progress.update(task, total=n * len(methods)),
            on_image=lambda _row: progress.advance(task),
        )
    keys = [k for k in COLUMNS if k in report.summary("sllen")]
    if per_image:
        table = Table(title="per image")
        table.add_column("image")
        table.add_column("method")
        first = [k for k in keys if k in PER_IMAGE]
        for key in first:
            table.add_column(COLUMNS[key][0], justify="right")
        for row in report.rows:
            cells = [_cell(key, row[key]) for key in first if key in row]
            table.add_row(row["name"], row["method"], *cells)
        console.print(table)
    label = "built-in evaluation set" if evalset else str(data)
    if well_lit:
        label = "built-in well-lit set"
    count = len({r["name"] for r in report.rows})
    console.print(f"{label}: mean of {count} image{'s' * (count != 1)}", soft_wrap=True)
    # Two tables, so that each fits an 80-column terminal.
    for title, part in (
        ("quality", [k for k in keys if k in QUALITY]),
        ("colour and exposure", [k for k in keys if k not in QUALITY]),
    ):
        if not part:
            continue
        table = Table(title=title)
        table.add_column("method")
        for k in part:
            table.add_column(COLUMNS[k][0], justify="right")
        for method in methods:
            summary = report.summary(method)
            table.add_row(method, *(_cell(k, summary[k]) for k in part))
        console.print(table)
    if report.paired:
        console.print(GT_MEAN_NOTE)
    for method in methods:  # a mean with images at the cap says little: give their count
        scores = [r["psnr"] for r in report.rows if r["method"] == method and "psnr" in r]
        capped = sum(score >= PSNR_MAX_DB for score in scores)
        if capped:
            rest = [score for score in scores if score < PSNR_MAX_DB]
            median = f"{statistics.median(rest):.2f} dB" if rest else "none"
            console.print(
                f"{method}: {capped} of {len(scores)} images equal their ground truth (PSNR "
                f"capped at {PSNR_MAX_DB:g} dB, counted so in the mean); the median of the rest: "
                f"{median}",
                soft_wrap=True,
            )
    # paths whole (soft_wrap): a wrapped path cannot be copied
    console.print(f"sllen = {name}", soft_wrap=True, markup=False)
    if json_out is not None:
        console.print(f"report: {write_json(report, json_out)}", soft_wrap=True, markup=False)


def main() -> None:
    run_single(eval_command)


if __name__ == "__main__":
    main()
