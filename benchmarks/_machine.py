"""Machine facts recorded with every benchmark result, so ratios are read in context."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": mem_gib, "platform": platform.platform(),
            "python": sys.version.split()[0], "measured_at": datetime.now(timezone.utc).isoformat()}
