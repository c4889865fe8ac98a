"""One line on stderr and a non-zero exit code for every failure.

Bad input (a missing file, a truncated weights file, a folder without images, a missed
budget) raises the SllenError family (sllen.runtime.errors) deep in the library, and the
operating system raises OSError (permissions, a full disk): exit 2, one red line. A missing
optional package names the extra that installs it (exit 2). Anything else is a bug: still one
line, exit 1, and SLLEN_DEBUG=1 shows the traceback for the bug report. Output piped into a
reader that stops early (``sllen info FILE | head``) ends the command quietly, as Unix tools
do (exit 141, a SIGPIPE's).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, overload

from rich.console import Console
from rich.markup import escape

from sllen.runtime.errors import SllenError, install_hint, os_error_code
from sllen.runtime.signals import sigterm_as_ctrl_c

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# Optional packages -> the pyproject extra that installs them: a run-only install (sllen[run])
# asked to train, export or evaluate hears what to install instead of a ModuleNotFoundError.
EXTRAS = {
    "torch": "train",
    "safetensors": "train",
    "onnx": "export",
    "onnxscript": "export",
    "onnxslim": "export",
    "onnxruntime": "run",
    "av": "run",
    "png": "run",
    "tifffile": "run",
    "skimage": "eval",
    "sklearn": "eval",
    "matplotlib": "eval",
    "ray": "ray",
}

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 1
EXIT_BROKEN_PIPE = 128 + getattr(signal, "SIGPIPE", 13)  # what a shell shows for `yes | head`


# SIGTERM (docker stop, systemd, a job scheduler) stops like Ctrl-C: a live recording is
# finished, a file being written is removed, the exit code is Ctrl-C's.
sigterm_stops = sigterm_as_ctrl_c


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    # The message is text, not markup: "sllen[train]" or a path with brackets must survive.
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise SystemExit(code)


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(text.split())


@overload
def user_errors(fn: F) -> F: ...


@overload
def user_errors(
    fn: None = None, *, extras: dict[str, str] | None = None, sigterm: bool = True
) -> Callable[[F], F]: ...


def user_errors(
    fn: F | None = None, *, extras: dict[str, str] | None = None, sigterm: bool = True
) -> Any:
    """Wrap a CLI command: known errors become one line and an exit code, never a traceback.

    ``extras`` overrides ``EXTRAS`` for one command: sllen-export needs torch from
    ``sllen[export]`` (which brings the ONNX tools too), not ``sllen[train]``. ``sigterm``:
    SIGTERM stops the command as Ctrl-C does (False: the command handles it itself)."""
    if fn is None:
        return functools.partial(user_errors, extras=extras, sigterm=sigterm)
    hints = {**EXTRAS, **(extras or {})}

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # SIGTERM as Ctrl-C (signal handlers: main thread only), so that an export's or an
        # evaluation's temporary files and empty output folder go too.
        main = threading.current_thread() is threading.main_thread()
        stops = sigterm_stops() if sigterm and main else None
        with stops or contextlib.nullcontext():
            one_line_warnings()
            if os.environ.get("SLLEN_DEBUG"):
                return fn(*args, **kwargs)
            return _guarded(fn, hints, *args, **kwargs)

    return wrapper


class _WarningLines(logging.Handler):
    """The runtime's logged warnings as the commands' warning lines."""

    def emit(self, record: logging.LogRecord) -> None:
        _print_warning(record.getMessage())


def _print_warning(message: object) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", markup=True)


def one_line_warnings() -> None:
    """Warnings (a truncated video, a codec fallback, a skipped file) as one yellow line each:
    those raised with `warnings` (Python's own format is two lines naming sllen's source
    file) and those the runtime logs (padding an odd size, re-encoding audio a container
    cannot hold), which would otherwise print bare, like a result line."""
    from sllen.runtime.video.common import VideoWarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        _print_warning(message)

    warnings.showwarning = show
    # every time, not once per place in the code: a second reconnect is news too
    warnings.simplefilter("always", VideoWarning)
    # Pillow from 89 MP: "could be decompression bomb DOS attack", of a 100 MP camera's photo;
    # its error from 179 MP still guards (runtime/images.py says that one in a line of its own)
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit")
    logger = logging.getLogger("sllen")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        logger.addHandler(_WarningLines(logging.WARNING))


def _guarded(fn: Callable[..., Any], hints: dict[str, str], *args: Any, **kwargs: Any) -> Any:
    """The command, its failures turned into one line and an exit code."""
    try:
        result = fn(*args, **kwargs)
        if sys.stdout is not None:  # a reader gone before the last buffered lines: here
            sys.stdout.flush()
        return result
    except KeyboardInterrupt as e:
        said = str(e)  # what was kept, where a command knows (sllen-run's folder runs)
        err_console.print(f"interrupted: {said}" if said else "interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except ModuleNotFoundError as e:
        package = (e.name or "").split(".")[0]
        if package not in hints:
            _bug(e)
        hint = install_hint(hints[package], torch=package == "torch")
        fail(f"this command needs {package}, which this installation lacks: {hint}")
    except BrokenPipeError as e:
        if not _stdout_gone():  # a pipe of the command's own (a socket, a child process)
            fail(_one_line(e))
        _leave_quietly()
    except (SllenError, OSError) as e:  # OSError: a path, a permission, a full disk
        fail(_one_line(e))
    except Exception as e:
        code = os_error_code(e)  # a safetensors write outside sllen.model.io's (which names it)
        if code is not None:
            fail(f"cannot write a safetensors file ({os.strerror(code)})")
        _bug(e)


def _stdout_gone() -> bool:
    """Whether stdout's reader has closed it (poll reports an error on the pipe's end)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout: the pipe was another
        return False
    if not hasattr(select, "poll"):  # Windows: Python's own recipe assumes stdout
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))


def _leave_quietly() -> None:
    """Exit as a Unix tool killed by SIGPIPE does, silently. Python's recipe (signal docs,
    "Note on SIGPIPE"): stdout goes to devnull, so the flush at exit cannot fail again."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_BROKEN_PIPE)


def _bug(e: BaseException) -> None:
    """A bug, not bad input: still one line, with a way to see more."""
    fail(
        f"{type(e).__name__}: {_one_line(e)} (set SLLEN_DEBUG=1 for the traceback)",
        EXIT_INTERNAL,
    )


def _is_usage_error(e: BaseException) -> bool:
    """click's UsageError (a bad option or value), whether typer uses click itself or its own
    vendored copy of it (typer >= 0.20), which raise different classes of the same name."""
    return any(c.__name__ == "UsageError" for c in type(e).__mro__)


def run_app(app: Any, args: list[str] | None = None, prog_name: str | None = None) -> None:
    """Run a typer app as a program. A usage error (an unknown option, a value of the wrong
    type) is one line and exit 2 like any bad input, not click's framed usage box."""
    try:
        code = app(args, prog_name=prog_name, standalone_mode=False)
    except Exception as e:
        if not _is_usage_error(e):
            raise
        if type(e).__name__ == "NoArgsIsHelpError":  # the help is printed already
            raise SystemExit(EXIT_BAD_INPUT) from None
        ctx = getattr(e, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        fail(_one_line(Exception(e.format_message())) + hint)  # type: ignore[attr-defined]
    raise SystemExit(code if isinstance(code, int) else 0)


def doc_help(command: Callable[..., Any]) -> str:
    """The command's docstring as help text, each paragraph on one line: typer's rich help keeps
    a docstring's line breaks, so `sllen --help` broke summaries mid-sentence."""
    paragraphs = (command.__doc__ or "").strip().split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def run_single(command: Callable[..., Any]) -> None:
    """Run one command as its own program (the sllen-train / sllen-eval console scripts)."""
    import typer

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(help=doc_help(command))(command)
    run_app(app)
