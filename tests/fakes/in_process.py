"""A sllen console script run inside the test process, for the cases that end before any real
work (a refused option, a missing file, a bad value).

The one-line error and the exit code come from the same code as in a subprocess (the script's
`main`, `sllen.cli._errors`), but a case costs milliseconds instead of a fresh interpreter and
torch's import (about 2.5 s each on 2 cores: the bad-option cases were a sixth of the suite).
An exception that escapes fails the test, as the traceback would in a subprocess. What needs a
process of its own stays a subprocess in the tests: signals, a blocked import, the console
script's wiring (`python -m sllen`, kept in tests/cli/test_cli.py), what prints at exit.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable

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


def run_cli(prog: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`prog args...` as a user types it (prog: "sllen", "sllen-export", ...), in this process.
    Returns what `subprocess.run(..., capture_output=True, text=True)` would."""
    main = _mains()[prog]
    out, err = io.StringIO(), io.StringIO()
    # What a command may change for the rest of its process, put back for the next test: the
    # warning handler on the "sllen" logger, the environment, torch's thread count.
    logger = logging.getLogger("sllen")
    handlers, environ, argv = list(logger.handlers), dict(os.environ), sys.argv
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    sys.argv = [prog, *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
        logger.handlers[:] = handlers
        os.environ.clear()
        os.environ.update(environ)
        if torch is not None and threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return subprocess.CompletedProcess(
        [prog, *args], code, _ANSI.sub("", out.getvalue()), _ANSI.sub("", err.getvalue())
    )
