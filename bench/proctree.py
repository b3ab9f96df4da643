"""A server's whole process tree, read from /proc: CPU time and memory.

The gateway is more than its uvicorn workers (the serve master, the background host that
a worker starts), and the issue's numbers are for the tree: CPU per request is the tree's
CPU time during a run divided by the requests it answered, and memory is the sum over
every process of its peak RSS (VmHWM) and of its PSS (shared pages split between the
processes sharing them, so the sum is what the tree really occupies).
"""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime + stime + cutime + cstime in jiffies), None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    # utime stime cutime cstime are fields 14-17 (1-based), i.e. 11-14 after "state".
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def _all_stats() -> dict[int, tuple[int, int]]:
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                stats[int(entry.name)] = st
    return stats


def tree_pids(root: int, stats: dict[int, tuple[int, int]] | None = None) -> list[int]:
    """root and every live descendant."""
    stats = _all_stats() if stats is None else stats
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out.append(pid)
            todo.extend(children.get(pid, ()))
    return sorted(out)


class TreeCpu:
    """CPU seconds used by the tree under `root` between start() and stop(), in total and
    for the processes whose command line contains `apart` (the background host: its
    writer's inserts are the log's cost, not the relaying's). A process that exits
    meanwhile is counted through its parent's cutime/cstime once reaped."""

    def __init__(self, root: int, apart: str = "heliograph.background"):
        self.root = root
        self.apart = apart
        self._start: dict[int, int] = {}
        self.apart_s = 0.0

    def _read(self) -> dict[int, int]:
        stats = _all_stats()
        return {pid: stats[pid][1] for pid in tree_pids(self.root, stats)}

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float:
        end = self._read()
        deltas = {pid: j - self._start.get(pid, 0) for pid, j in end.items()}
        self.apart_s = sum(d for pid, d in deltas.items() if self.apart in _cmdline(pid)) / CLK_TCK
        return max(0, sum(deltas.values())) / CLK_TCK


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kb(path: str, field_name: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(root: int) -> dict:
    """Per process and summed over the tree: peak RSS (VmHWM), RSS now and PSS now, MB."""
    procs = []
    for pid in tree_pids(root):
        cmd = _cmdline(pid)
        if not cmd:
            continue
        procs.append({"pid": pid, "cmd": cmd.strip()[:120],
                      "peak_rss_mb": _kb(f"/proc/{pid}/status", "VmHWM") / 1024,
                      "rss_mb": _kb(f"/proc/{pid}/status", "VmRSS") / 1024,
                      "pss_mb": _kb(f"/proc/{pid}/smaps_rollup", "Pss") / 1024})
    return {"processes": procs,
            "peak_rss_mb": sum(p["peak_rss_mb"] for p in procs),
            "rss_mb": sum(p["rss_mb"] for p in procs),
            "pss_mb": sum(p["pss_mb"] for p in procs)}
