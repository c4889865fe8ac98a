"""Peak memory of one benchmark case: resident set on the host, allocator peak on a GPU.

The process's peak resident set (VmHWM, ru_maxrss) only ever grows, so a second case would
inherit the first one's peak. On Linux the high-water mark can be reset by writing "5" to
/proc/self/clear_refs (proc(5), since Linux 4.0); each case resets it, and reports the peak
of the whole process during the case (interpreter, libraries, loaded models included) and
the part added on top of what was resident when the case began (activations, workspaces).
Where the reset is not possible the peak is the process's peak so far, and says so.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss_mb() -> float | None:
    kib = _status_kib("VmRSS")
    return kib / 1024 if kib is not None else None


def _maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB else


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS; False where the kernel does not allow."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


@dataclass
class MemoryUse:
    peak_rss_mb: float | None = None  # the process during the case
    added_rss_mb: float | None = None  # peak minus the resident set when the case began
    rss_method: str = ""
    gpu_peak_mb: float | None = None  # torch's allocator peak on the device (PyTorch backend)
    gpu_used_mb: float | None = None  # device-wide used memory after the case (all processes)
    gpu_method: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PeakMemory:
    """``with PeakMemory(device) as mem: ...`` then ``mem.result``."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.result = MemoryUse()
        self._start_rss: float | None = None
        self._reset = False
        self._torch: Any = None

    def __enter__(self) -> PeakMemory:
        self._reset = reset_peak_rss()
        self._start_rss = current_rss_mb()
        if self.device.startswith("cuda") and "torch" in sys.modules:
            torch = sys.modules["torch"]
            if torch.cuda.is_available():
                self._torch = torch
                torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        r = self.result
        if self._reset:
            kib = _status_kib("VmHWM")
            r.peak_rss_mb = kib / 1024 if kib is not None else None
            r.rss_method = "VmHWM reset per case (/proc/self/clear_refs)"
        else:
            r.peak_rss_mb = _maxrss_mb()
            r.rss_method = "ru_maxrss: process peak since start (not reset per case)"
        if r.peak_rss_mb is not None and self._start_rss is not None:
            r.added_rss_mb = max(0.0, r.peak_rss_mb - self._start_rss)
        if self._torch is not None:
            torch = self._torch
            r.gpu_peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            free, total = torch.cuda.mem_get_info(self.device)
            r.gpu_used_mb = (total - free) / 2**20
            r.gpu_method = (
                "peak: torch.cuda.max_memory_allocated (torch's allocations only); "
                "used: cudaMemGetInfo (whole device)"
            )
