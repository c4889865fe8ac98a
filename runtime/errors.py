"""The errors a user can fix, as one family: the CLI shows them as one line and exits 2.

Anything else that escapes a command is a bug: one line, exit 1, and SLLEN_DEBUG=1 for the
traceback (sllen.cli._errors). Each class also derives from the built-in type callers have
always caught (ValueError, FileNotFoundError, RuntimeError), so library users keep working.
Standard library only: the runtime is the bottom layer and everything above may raise these.
"""

from __future__ import annotations

import os
import re

# safetensors (Rust) reports an OS failure as "... I/O error: No space left on device (os
# error 28)" in a SafetensorError of its own, which is no OSError.
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def os_error_code(e: BaseException) -> int | None:
    """The errno of an OS failure a safetensors writer reported in ``e``, else None."""
    if type(e).__name__ != "SafetensorError":
        return None
    found = _OS_ERROR.search(str(e))
    return int(found.group(1)) if found else None


class SllenError(Exception):
    """An error the user can fix (bad input, a missing file or library, a missed budget)."""


class WriteError(SllenError, OSError):
    """A file the operating system would not let us write (a full disk, a permission): one
    line naming the file and the reason, as the CLI shows any bad environment (exit 2).
    Weights and checkpoints (sllen.model.io), sllen-export's files (sllen.export.staging)."""

    def __init__(self, path: str | os.PathLike[str], code: int | None, reason: str) -> None:
        super().__init__(code, reason, os.fspath(path))

    def __str__(self) -> str:
        return f"{self.filename}: cannot write ({self.strerror})"


class InputError(SllenError, ValueError):
    """A value, file or option sllen cannot use as given."""


class MissingFileError(SllenError, FileNotFoundError):
    """A path the user named does not exist."""


class BudgetError(SllenError):
    """An exported file misses its accuracy budget even with every layer moved back to float."""


class MissingDependencyError(SllenError, ImportError):
    """An optional package (an extra of sllen) is needed for this command."""


# The torch the project is tested with (README, "Set-up"; pyproject accepts a range).
TORCH_PIN = "torch==2.13.0"
# pip's torch on Linux is the CUDA build (several GB): a machine without an NVIDIA GPU wants
# PyTorch's CPU index, so a hint that installs torch says so (README, "Set-up").
CPU_TORCH = f"python -m pip install {TORCH_PIN} --index-url https://download.pytorch.org/whl/cpu"


def install_hint(extras: str, *, torch: bool = False) -> str:
    """The command that installs sllen's ``extras``, as README's: sllen is installed from its
    clone (``sllen[extras]`` names no package on PyPI); with ``torch`` the pinned torch too,
    and the CPU build's command for machines without an NVIDIA GPU."""
    packages = f'"{TORCH_PIN}" ".[{extras}]"' if torch else f'".[{extras}]"'
    hint = f"python -m pip install {packages} in the sllen clone"
    return f"{hint} (no NVIDIA GPU: {CPU_TORCH} first)" if torch else hint
