"""Shared helpers for the benchmarks: timing a command with its peak RSS."""
import os
import re
import subprocess
import sys
import time


def timed(cmd, env):
    """Runs cmd under /usr/bin/time after a sync (so earlier writeback does not bill this run).
    Returns (seconds, peak RSS bytes, stdout)."""
    os.sync()
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB=%M", *map(str, cmd)], env=env, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return dt, int(re.findall(r"MAXRSS_KB=(\d+)", p.stderr)[-1]) * 1024, p.stdout


def machine_line(versions: str, method: str) -> str:
    """The 'Machine: …' line every benchmark section starts with."""
    import platform
    return (f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, {platform.platform()}. "
            f"{versions}. {method}")


def publish(report: str, results_md, record: bool = True):
    """Prints a section and appends it to bench/RESULTS.md (unless --no-record)."""
    print("\n" + report)
    if record:
        with open(results_md, "a") as f:
            f.write(report + "\n")
