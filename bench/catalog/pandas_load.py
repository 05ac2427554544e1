"""Peer baseline for bench/catalog/run.sh: how long SkyPilot's own catalog reader takes on the same files.

SkyPilot 0.14.1 reads each `<cloud>/vms.csv` with `pandas.read_csv` (sky/catalog/common.py, read_catalog)
and does no joining or validation at load time, so this is a lower bound for SkyPilot's catalog load.

Usage: python pandas_load.py RUNS SKYPILOT_DIR
Prints: pandas.read_csv rows=<n> min_ms=<x> median_ms=<y> cpu_ms=<z> runs=<RUNS>  (cpu_ms: median
process CPU time of one load, robust to a busy machine)
"""
import glob
import os
import statistics
import sys
import time

import pandas as pd

runs = int(sys.argv[1])
files = sorted(glob.glob(os.path.join(sys.argv[2], "*", "vms.csv")))
times, cpu, rows = [], [], 0
for _ in range(runs):
    t0, c0 = time.perf_counter(), time.process_time()
    rows = sum(len(pd.read_csv(f)) for f in files)
    times.append((time.perf_counter() - t0) * 1000)
    cpu.append((time.process_time() - c0) * 1000)
times.sort()
print(f"pandas.read_csv rows={rows} min_ms={times[0]:.1f} median_ms={statistics.median(times):.1f} "
      f"cpu_ms={statistics.median(cpu):.0f} runs={runs}")
