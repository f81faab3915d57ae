"""CPU time, memory, environment and open-file limit of a process, read from /proc (Linux)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

PROC = Path("/proc")


def cpu_seconds(pid: int, *, proc: Path = PROC) -> float:
    """User plus system CPU time the process has used, in seconds (/proc/<pid>/stat)."""
    stat = (proc / str(pid) / "stat").read_text()
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int, *, proc: Path = PROC) -> int:
    """Resident set size now (VmRSS in /proc/<pid>/status), in bytes."""
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def machine_ticks(*, proc: Path = PROC) -> tuple[int, int]:
    """(busy, total) CPU ticks over all cores since boot (/proc/stat); idle and iowait are
    not busy. The share of two readings' differences is how busy the machine was between."""
    fields = [int(v) for v in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - fields[3] - fields[4], total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share (0-1) of all cores' time that was busy between two machine_ticks()."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def environ(pid: int, *, proc: Path = PROC) -> dict[str, str]:
    """The environment the process started with (/proc/<pid>/environ: NUL-separated)."""
    raw = (proc / str(pid) / "environ").read_bytes()
    pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if b"=" in entry)
    return {name.decode(): value.decode(errors="replace") for name, _, value in pairs}


def open_files_limit(pid: int, *, proc: Path = PROC) -> int | None:
    """The process's soft limit on open files (/proc/<pid>/limits); None for unlimited."""
    for line in (proc / str(pid) / "limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft = line.removeprefix("Max open files").split()[0]
            return None if soft == "unlimited" else int(soft)
    raise ValueError(f"no open files limit for pid {pid}")


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files to ``wanted`` (at most the hard limit),
    never lower it; the processes it starts inherit it. Returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
