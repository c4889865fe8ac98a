"""``sllen-run --ray``: the same files-in, files-out run spread over a Ray cluster.

:func:`run_files_ray` keeps :func:`sllen.runtime.run.run_files`'s contract (same outputs, same
:class:`~sllen.runtime.run.RunSummary`, same ``progress`` and ``on_result`` callbacks, a bad
file recorded and the rest finished) and runs the work on Ray actors:

- **One model per worker.** Each worker is an actor that opens the model once (from an
  :class:`~sllen.runtime.api.EnhancerSpec`) and then enhances file after file with the local
  code path (:func:`~sllen.runtime.run.run_image`, :func:`~sllen.runtime.run.run_video`), so
  its outputs are byte for byte what a local run writes. A worker holds one GPU (TensorRT,
  ``--device cuda``, or ``auto`` on a cluster with GPUs) or ``threads`` CPUs.
- **Whole videos as one task each**: temporal smoothing follows the brightness through the
  whole clip, so a clip cut in pieces would not match a local run at the seams. Images go a
  few to a task, to amortise the per-task overhead.
- **Dynamic dispatch, largest first**: a worker gets the next task when it is free
  (``ray.wait``), biggest files first so no long video starts last and leaves the others idle.
- **Resumable**: with ``opts.skip_existing`` finished outputs (atomic renames: an output is
  there only when complete) are skipped on the driver before anything is dispatched.
- **Failures**: a file that fails (SllenError, OSError) is reported as in a local run. A worker
  that dies (out of memory, a crash in a native library, a lost node) is replaced, and its file
  is retried once on another worker (a batch of images is retried one image per task, so only
  the image that kills a worker is blamed); a second death reports the file failed. A bug
  (any other exception) stops the run, as it does locally.

The cluster must share a file system: workers read the inputs and write the outputs at the
paths the driver sees (made absolute before sending), and the model file likewise. Every
node needs sllen with the run and ray extras (docs/distributed.md has the details).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import pickle
import signal
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sllen.runtime.api import EnhancerSpec
from sllen.runtime.errors import (
    InputError,
    MissingDependencyError,
    MissingFileError,
    SllenError,
    install_hint,
)
from sllen.runtime.inputs import already_done, is_video, output_folder, output_paths
from sllen.runtime.run import (
    FileResult,
    ProgressFn,
    RunOptions,
    RunSummary,
    prepare_output,
    remove_leftovers_of,
)

__all__ = ["run_files_ray"]

DEFAULT_CPU_THREADS = 4  # CPU threads per worker when the spec does not say
IMAGES_PER_TASK = 8  # at most this many images per task (fewer when there are few images)
TASKS_PER_WORKER = 4  # aim for at least this many image tasks per worker, for balance
ATTEMPTS = 2  # a file whose worker dies is tried at most this many times
POLL_SECONDS = 0.25  # how often the driver forwards video progress
PROGRESS_SECONDS = 0.2  # how often a worker reports a video's frame count


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            f"running on Ray needs ray, which this installation lacks: {install_hint('ray')}"
        ) from None
    return ray


# --------------------------------------------------------------------------- work items


@dataclass
class _Task:
    items: list[tuple[Path, Path]]  # (absolute source, absolute output)
    size: int = 0  # bytes of input, to start the biggest tasks first


def _tasks(todo: list[tuple[Path, Path]], workers: int) -> list[_Task]:
    """Videos one per task, images a few per task; videos first (a short clip is fewer bytes
    than one photograph but many frames of work), then the biggest tasks."""
    sized = [(_size(src), src, dst) for src, dst in todo]
    sized.sort(key=lambda t: -t[0])  # stable: equal sizes keep the sources' order
    videos = [_Task([(s, d)], n) for n, s, d in sized if is_video(s)]
    images = [(n, s, d) for n, s, d in sized if not is_video(s)]
    per_task = max(1, min(IMAGES_PER_TASK, math.ceil(len(images) / (TASKS_PER_WORKER * workers))))
    batches = []
    for i in range(0, len(images), per_task):
        chunk = images[i : i + per_task]
        batches.append(_Task([(s, d) for _, s, d in chunk], sum(n for n, _, _ in chunk)))
    return sorted(videos, key=lambda t: -t.size) + sorted(batches, key=lambda t: -t.size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # a missing file fails on the worker, as it would locally


def _absolute_spec(spec: EnhancerSpec) -> EnhancerSpec:
    """The spec with its files as absolute paths, so a worker in another folder finds them."""
    options = {
        k: str(Path(v).absolute()) if isinstance(v, Path) or (k == "plugin_library" and v) else v
        for k, v in spec.options.items()
    }
    model = str(Path(spec.model).absolute()) if spec.model is not None else None
    return dataclasses.replace(spec, model=model, options=options)


# --------------------------------------------------------------------------- the worker


class _Worker:
    """One model, opened once; enhances tasks with the local code path (a Ray actor)."""

    def __init__(self, spec: EnhancerSpec, opts: RunOptions, board: Any = None) -> None:
        self.opts = opts
        self.board = board
        self.error: BaseException | None = None
        self.backend: Any = None
        try:
            self.backend = spec.open_backend()
            self.enhancer = spec.enhancer(self.backend)
            self.describe = self.backend.info.describe()
        except Exception as e:  # sent back by ready(): the driver decides what it means
            self.error = _picklable(e)

    def ready(self) -> tuple[str | None, BaseException | None]:
        """(the backend's description, None), or (None, why the model did not open)."""
        if self.error is not None:
            return None, self.error
        return self.describe, None

    def run(
        self, items: list[tuple[Path, Path]]
    ) -> tuple[list[FileResult], list[tuple[type[Warning], str]]]:
        """Enhance each (source, output); the results and the warnings raised meanwhile."""
        from sllen.runtime import run as local

        results = []
        with warnings.catch_warnings(record=True) as caught:
            for src, dst in items:
                # Videos report frames as they go; images are counted by the driver.
                video = is_video(src) and self.board is not None
                progress = _Reporter(self.board, src) if video else None
                try:
                    result = local.run_one(src, dst, self.enhancer, self.opts, progress)
                finally:
                    if progress is not None:
                        progress.flush()
                results.append(result)
        return results, [(w.category, str(w.message)) for w in caught]


class _Reporter:
    """A video's frame count, sent to the progress board at most every PROGRESS_SECONDS."""

    def __init__(self, board: Any, src: Path) -> None:
        self.board = board
        self.src = str(src)  # the key: two videos of one name in two folders stay apart
        self.last = 0.0
        self.unsent: tuple[str, str, int, int | None] | None = None

    def __call__(self, name: str, done: int, total: int | None) -> None:
        self.unsent = (self.src, name, done, total)
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            self.board.update.remote(*self.unsent)
            self.unsent = None

    def flush(self) -> None:
        """Send the last count and wait until the board has it (before the task returns)."""
        if self.unsent is not None:
            import ray

            ray.get(self.board.update.remote(*self.unsent))
            self.unsent = None


class _Board:
    """Latest frame counts of the videos in progress (a Ray actor; the driver drains it)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], tuple[str, str, int, int | None]] = {}

    def update(self, src: str, name: str, done: int, total: int | None) -> None:
        self.counts[src, name] = (src, name, done, total)

    def drain(self) -> list[tuple[str, str, int, int | None]]:
        counts, self.counts = self.counts, {}
        return list(counts.values())


def _picklable(e: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        kind = SllenError if isinstance(e, SllenError) else RuntimeError
        return kind(f"{type(e).__name__}: {e}")


# --------------------------------------------------------------------------- the cluster


def _connect(ray: Any, address: str | None) -> bool:
    """Start (address None) or join a Ray cluster; True when this call connected (and so
    disconnects at the end)."""
    if ray.is_initialized():  # the caller's program already holds a Ray connection
        return False
    quiet: dict[str, Any] = dict(logging_level=logging.ERROR, log_to_driver=False)
    if address is None:
        # "local": a new instance even where a `ray start` cluster runs on this machine (Ray's
        # default would join that one). Ray runs workers at nice 15 by default (the control
        # plane stays responsive); a local instance does the user's work, so it runs at the
        # user's priority, as a local run would (a joined cluster keeps its own setting).
        with _own_sigterm():
            ray.init(
                address="local",
                include_dashboard=False,
                _system_config={"worker_niceness": 0},
                **quiet,
            )
        return True
    _check_reachable(address)
    try:
        with _own_sigterm():
            ray.init(address=address, **quiet)
    except ConnectionError as e:
        if address == "auto":
            raise InputError(
                "--ray auto: no Ray cluster runs on this machine (start one with "
                "`ray start --head`, or give --ray alone for a local instance of this run)"
            ) from None
        raise InputError(f"--ray {address}: {_one_line(e)}{AUTH_HINT}") from None
    return True


@contextlib.contextmanager
def _own_sigterm() -> Iterator[None]:
    """Keep the caller's SIGTERM handler: ray.init replaces it (on the main thread) with one
    that exits at once with status 15, where sllen-run stops like Ctrl-C (status 130, the file
    being written removed)."""
    on_main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM) if on_main else None
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


# A cluster started with token authentication refuses a driver without it ("InvalidAuthToken"
# in Ray's own log lines, then a plain connection failure): the driver needs the same setting.
AUTH_HINT = " (a cluster with token authentication needs RAY_AUTH_MODE=token here too)"
CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str) -> None:
    """One line within seconds when nothing listens at HOST:PORT: ray.init would retry for
    about 14 minutes, printing Ray's C++ warnings, before it gave up."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(f"--ray {address}: give HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise InputError(
            f"--ray {address}: nothing answers at {hostport} ({e.strerror or e}); is the "
            "cluster running (ray start --head) and the port open?"
        ) from None


@dataclass
class _Plan:
    workers: int
    resources: dict[str, float]
    spec: EnhancerSpec
    notes: list[str] = field(default_factory=list)


def _on_gpu(spec: EnhancerSpec, cluster_gpus: float) -> bool:
    if spec.device == "cpu":
        return False
    if spec.backend == "tensorrt" or spec.device.startswith("cuda"):
        return True
    if spec.model is not None and Path(spec.model).suffix.lower() in (".engine", ".plan", ".trt"):
        return True
    return spec.device == "auto" and cluster_gpus > 0


def _plan(ray: Any, spec: EnhancerSpec, workers: int | None, local: bool, tasks: int) -> _Plan:
    """How many workers, and what each holds: one GPU, or ``threads`` CPUs."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    gpus = sum(float(n.get("GPU", 0)) for n in nodes)
    notes = []
    if _on_gpu(spec, gpus):
        # Ray sets CUDA_VISIBLE_DEVICES to the worker's GPU: it is cuda:0 in there.
        device = "cuda" if spec.device == "auto" or spec.device.startswith("cuda") else spec.device
        spec = dataclasses.replace(spec, device=device)
        resources: dict[str, float] = {"num_gpus": 1}
        room = sum(int(float(n.get("GPU", 0))) for n in nodes)
        unit = "GPU"
    else:
        cpus = [int(float(n.get("CPU", 0))) for n in nodes]
        threads = spec.threads or max(1, min(DEFAULT_CPU_THREADS, max(cpus, default=1)))
        spec = dataclasses.replace(spec, threads=threads)
        resources = {"num_cpus": threads}
        room = sum(c // threads for c in cpus)
        unit = f"{threads} CPU" + ("s" if threads > 1 else "")
    if workers is not None and workers < 1:
        raise InputError("--workers must be at least 1")
    if room < 1 and (local or workers is None):
        raise InputError(
            f"the Ray cluster has no room for a worker ({unit} each)"
            + ("; use --device cpu for CPU workers" if unit == "GPU" else "; lower --threads")
        )
    if workers is None:
        count = room
    elif workers > room:
        if local:  # a local instance never grows: more would wait forever
            notes.append(f"{workers} workers asked for, room for {room} ({unit} each)")
            count = room
        else:
            notes.append(
                f"{workers} workers asked for, the cluster has room for {room} now "
                f"({unit} each); the rest start when it grows"
            )
            count = workers
    else:
        count = workers
    return _Plan(max(1, min(count, tasks)), resources, spec, notes)


# --------------------------------------------------------------------------- the driver


def run_files_ray(
    sources: Sequence[Path],
    spec: EnhancerSpec,
    opts: RunOptions,
    *,
    address: str | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    on_open: Callable[[str, int], None] | None = None,
) -> RunSummary:
    """Enhance every source into ``opts.output`` on Ray workers (module doc).

    ``address`` None starts a local Ray instance (and stops it at the end); otherwise it is a
    cluster to join: ``"auto"`` (a ``ray start`` on this machine), ``"HOST:6379"``, or
    ``"ray://HOST:10001"`` (Ray Client). A program that already called ``ray.init`` keeps its
    connection. ``workers`` None: as many as the cluster has room for (one GPU or
    ``spec.threads`` CPUs each; threads default to 4). ``progress(name, frames done, total)``
    and ``on_result(FileResult)`` are called on this process as files finish anywhere in the
    cluster (in the order they finish); ``summary.results`` is in the sources' order.
    ``on_open(backend description, workers planned)`` is called once, when the first worker
    has opened the model.
    """
    sources = list(sources)
    outputs = output_paths(sources, opts.output, opts.codec)
    prepare_output(output_folder(sources, opts.output))
    summary = RunSummary()
    start = time.perf_counter()
    finished: dict[Path, FileResult] = {}
    original = {src.absolute(): src for src in sources}
    local_output = {src.absolute(): outputs[src] for src in sources}
    names = Counter(src.name for src in sources)
    # the progress bar's name of each file: its own, or its path where another shares it
    labels = {a: str(s) if names[s.name] > 1 else s.name for a, s in original.items()}

    def report(result: FileResult) -> None:
        key = result.source
        result.source = original[key]
        if result.error:  # the worker's message names the absolute path: the user's instead
            result.error = result.error.replace(str(key), str(original[key]))
        if result.output is not None:
            result.output = local_output[key]
        if not result.error and not result.skipped:
            summary.times.add(result.times)
        finished[key] = result
        if on_result:
            on_result(result)

    todo = []
    done = already_done(sources, outputs, opts.codec) if opts.skip_existing else set()
    for src in sources:
        if src in done:
            report(FileResult(src.absolute(), outputs[src], skipped=True))
        else:
            if opts.skip_existing:
                remove_leftovers_of(outputs[src])
            todo.append((src.absolute(), outputs[src].absolute()))
    if todo:
        if spec.model is not None and not Path(spec.model).is_file():  # a shared file system
            raise MissingFileError(f"{spec.model}: no such model file")
        ray = _import_ray()
        wopts = dataclasses.replace(opts, output=opts.output.absolute())
        connected = _connect(ray, address)
        local = connected and address is None  # an instance of this run: it never grows
        try:
            shown = None
            if progress is not None:

                def shown(src: str, name: str, done: int, total: int | None) -> None:
                    base = Path(src).name  # "clip.mp4" or "photo.jpg (tiles)": label it
                    progress(name.replace(base, labels.get(Path(src), base), 1), done, total)

            _drive(ray, todo, _absolute_spec(spec), wopts, workers, local, shown, report, on_open)
        finally:
            if connected:
                ray.shutdown()
    summary.results = [finished[src.absolute()] for src in sources]
    summary.wall = time.perf_counter() - start
    return summary


def _drive(
    ray: Any,
    todo: list[tuple[Path, Path]],
    spec: EnhancerSpec,
    opts: RunOptions,
    workers: int | None,
    local: bool,
    progress: Callable[[str, str, int, int | None], None] | None,  # (source, name, done, total)
    report: Callable[[FileResult], None],
    on_open: Callable[[str, int], None] | None = None,
) -> None:
    from ray.exceptions import RayActorError, RayTaskError

    plan = _plan(ray, spec, workers, local, tasks=len(todo))
    for note in plan.notes:
        warnings.warn(note, stacklevel=3)
    pending = deque(_tasks(todo, plan.workers))
    board = ray.remote(num_cpus=0)(_Board).remote() if progress is not None else None
    actor_class = ray.remote(**plan.resources)(_Worker)
    attempts: dict[Path, int] = {}
    starting: dict[Any, Any] = {}  # ready() ref -> actor
    idle: list[Any] = []
    running: dict[Any, tuple[Any, _Task]] = {}  # run() ref -> (actor, task)
    replacements = max(2, plan.workers)  # workers that may be started after deaths
    last_error: list[BaseException] = []
    opened = 0  # workers that opened the model

    def launch() -> None:
        actor = actor_class.remote(spec, opts, board)
        starting[actor.ready.remote()] = actor

    def forward_progress() -> None:
        if board is not None and progress is not None:
            for src, name, done, total in ray.get(board.drain.remote()):
                progress(src, name, done, total)

    def died(task: _Task, why: str) -> None:
        """The worker running `task` died: retry its files once, one per task."""
        for src, dst in task.items:
            attempts[src] = attempts.get(src, 0) + 1
            if attempts[src] >= ATTEMPTS:
                report(FileResult(src, error=f"the Ray worker died twice on this file ({why})"))
            else:
                pending.appendleft(_Task([(src, dst)], _size(src)))

    for _ in range(plan.workers):
        launch()
    try:
        while pending or running:
            while pending and idle:
                actor, task = idle.pop(), pending.popleft()
                running[actor.run.remote(task.items)] = (actor, task)
            if not running and not starting:  # every worker died and none may replace them
                why = f": {last_error[-1]}" if last_error else ""
                for task in pending:
                    for src, _ in task.items:
                        report(FileResult(src, error=f"not run: no Ray worker left{why}"))
                return
            waiting = list(starting) + list(running)
            timeout = POLL_SECONDS if board is not None else None
            ready, _ = ray.wait(waiting, num_returns=1, timeout=timeout)
            forward_progress()
            for ref in ready:
                if ref in starting:
                    actor = starting.pop(ref)
                    try:
                        described, error = ray.get(ref)
                    except RayActorError as e:  # the process died while opening the model
                        described, error = None, RuntimeError(_one_line(e))
                    if error is None:
                        if not opened and on_open is not None and described is not None:
                            on_open(described, plan.workers)
                        opened += 1
                        idle.append(actor)
                        continue
                    ray.kill(actor)
                    if not opened or not (idle or running or starting):
                        raise error  # the model does not open: as fatal as it is locally
                    warnings.warn(f"a Ray worker could not open the model: {error}", stacklevel=3)
                    continue
                actor, task = running.pop(ref)
                try:
                    results, caught = ray.get(ref)
                except RayTaskError as e:  # a bug, not a bad file: stop, as a local run does
                    raise (e.cause if isinstance(e.cause, BaseException) else e) from None
                except RayActorError as e:
                    last_error.append(e)
                    ray.kill(actor)
                    died(task, _one_line(e))
                    if replacements > 0:
                        replacements -= 1
                        launch()
                    continue
                idle.append(actor)
                for category, message in caught:
                    warnings.warn(message, category, stacklevel=3)
                for result in results:
                    if progress is not None and not result.error and not is_video(result.source):
                        progress(str(result.source), result.source.name, 1, 1)
                    report(result)
    finally:
        for actor in [*idle, *starting.values(), *(a for a, _ in running.values())]:
            ray.kill(actor)
        if board is not None:
            ray.kill(board)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."
