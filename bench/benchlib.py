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
