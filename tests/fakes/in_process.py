"""A sllen console script run inside the test process, for the cases that end before any real
work (a refused option, a missing file, a bad value).

The one-line error and the exit code come from the same code as in a subprocess (the script's
`main`, `sllen.cli._errors`), but a case costs milliseconds instead of a fresh interpreter and
torch's import (about 2.5 s each on 2 cores: the bad-option cases were a sixth of the suite).
An exception that escapes fails the test, as the traceback would in a subprocess. What a
subprocess would show is kept: file descriptors 1 and 2 are captured too (native code's
writes), other libraries' log records reach stderr through logging's last-resort handler
(pytest's own handlers are set aside), and the program name in usage hints is the script's.
What needs a process of its own stays a subprocess in the tests: signals, a blocked import,
the console script's wiring (`python -m sllen`, kept in tests/cli/test_cli.py), what prints at
exit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
import types
import warnings
from collections.abc import Callable, Iterator

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # rich colours the "error:" when it saw a TTY


def _mains() -> dict[str, Callable[[], None]]:
    from sllen.cli import bench, evaluate, export, main, run, train

    return {
        "sllen": main.main,
        "sllen-train": train.main,
        "sllen-eval": evaluate.main,
        "sllen-export": export.main,
        "sllen-run": run.main,
        "sllen-bench": bench.main,
    }


@contextlib.contextmanager
def _fd_captured(fd: int) -> Iterator[io.StringIO]:
    """What is written to file descriptor ``fd`` meanwhile (by native code), as text after."""
    text = io.StringIO()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(fd)
        os.dup2(tmp.fileno(), fd)
        try:
            yield text
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            text.write(tmp.read().decode(errors="replace"))


def run_cli(prog: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`prog args...` as a user types it (prog: "sllen", "sllen-export", ...), in this process.
    Returns what `subprocess.run(..., capture_output=True, text=True)` would."""
    main = _mains()[prog]
    out, err = io.StringIO(), io.StringIO()
    # What a command may change for the rest of its process, put back for the next test: the
    # handlers of the "sllen" logger, the environment, torch's thread count (torch imported
    # first when it is installed, so its count is known before a --threads changes it).
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401
    torch_module = sys.modules.get("torch")
    threads = torch_module.get_num_threads() if torch_module is not None else None
    logger, root = logging.getLogger("sllen"), logging.getLogger()
    handlers, root_handlers = list(logger.handlers), list(root.handlers)
    environ, argv, main_module = dict(os.environ), sys.argv, sys.modules["__main__"]
    sys.argv = [prog, *args]
    # click names the program after __main__'s package when there is one ("python -m pytest")
    sys.modules["__main__"] = types.ModuleType("__main__")
    root.handlers[:] = []  # a subprocess has none: records go to logging.lastResort (stderr)
    code = 0
    try:
        with (
            warnings.catch_warnings(),  # the command's warning display and filters
            _fd_captured(1) as fd_out,
            _fd_captured(2) as fd_err,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.modules["__main__"] = argv, main_module
        logger.handlers[:] = handlers
        root.handlers[:] = root_handlers
        os.environ.clear()
        os.environ.update(environ)
        if torch_module is not None and torch_module.get_num_threads() != threads:
            torch_module.set_num_threads(threads)
    stdout = _ANSI.sub("", out.getvalue() + fd_out.getvalue())
    return subprocess.CompletedProcess(
        [prog, *args], code, stdout, _ANSI.sub("", err.getvalue() + fd_err.getvalue())
    )
