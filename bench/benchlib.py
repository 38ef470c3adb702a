"""Shared helpers for the benchmarks: timing a command with its peak RSS, medians, and the settings
both tools run with."""
import os
from pathlib import Path
import re
import shutil
import statistics
import subprocess
import sys
import time

# Both tools with the same compression and pack size, so ratios compare like with like: restic's
# `auto` is zstd at its default level, Lifeboat's default is zstd level 3; both default to 16 MiB packs.
RESTIC_SETTINGS = {"RESTIC_COMPRESSION": "auto", "RESTIC_PACK_SIZE": "16"}
LIFEBOAT_INIT_SETTINGS = ["--compression-level", "3", "--pack-size-mib", "16"]
SETTINGS = ("Settings pinned: restic compression auto (zstd, default level), pack size 16 MiB, its cache emptied "
            "before every restore; Lifeboat zstd level 3, pack size 16 MiB (it keeps no local cache).")


def median(runs):
    """The true median (the mean of the two middle runs for an even count); benches use odd counts."""
    return statistics.median(runs)


def odd(n: int) -> int:
    """Rounds a repeat count up to an odd number, so the median is a run that happened."""
    return n if n % 2 else n + 1


def cold_cache(path) -> None:
    """Empties a restic cache directory (outside any timing): restores start as Lifeboat's do."""
    shutil.rmtree(path, ignore_errors=True)


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_page_cache() -> bool:
    """Writes back and drops the page cache (needs root; False without it). Before a restore or a check:
    the repository is then read from the disk, as after a disaster, whether a tool wrote it through the
    page cache (restic) or around it (Lifeboat's packs: O_DIRECT), and the `tar -x` floor reads its
    archive from the disk too. tmpfs keeps its pages."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
        return True
    except OSError:
        return False


def can_drop_page_cache() -> bool:
    """Whether drop_page_cache works here, asked without dropping anything (for a report's method line)."""
    return os.access(DROP_CACHES, os.W_OK)


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
