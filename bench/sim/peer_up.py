#!/usr/bin/env python3
"""Runs the Can't Be Late authors' own uniform progress (their simulator's `rc_cr_threshold` strategy,
from an unmodified copy of their `sky_spot` package) on the traces, job, prices and start points of
`hedge simulate --trace spot:...`, and prints it beside Hedge's policies from Hedge's JSON report.

Usage: peer_up.py SKY_SPOT_PARENT_DIR HEDGE_JSON DEADLINE_HOURS [--spot-prices FILE] [--on-demand-price X --spot-price Y]

Only the driver is ours: an `Env` that reads the same availability as Hedge (AWS traces: count > 0 is
available; sky_spot-format GCP traces: 0 is available), the loop of their `simulate._simulate_one` for one
region, and the bill, computed from their strategy's per-tick decisions (`env.cluster_type_histroy`) at
Hedge's per-tick prices. The strategy's own step (restart overhead in seconds, partial progress within a
tick, the UP rules and their safety net) runs as they wrote it. Their progress list is swapped for one
that keeps a running sum (their code sums it every step), which changes no result.
"""
import json
import math
import sys
import types

parent, hedge_json, deadline_h = sys.argv[1], sys.argv[2], float(sys.argv[3])
opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
sys.path.insert(0, parent)
# Their strategies package imports every strategy (and numpy, wandb, ...); load only the three we need.
import sky_spot  # noqa: E402

pkg = types.ModuleType("sky_spot.strategies")
pkg.__path__ = [f"{parent}/sky_spot/strategies"]
sys.modules["sky_spot.strategies"] = pkg
from sky_spot import env as env_lib  # noqa: E402
from sky_spot import task as task_lib  # noqa: E402
from sky_spot.strategies import rc_cr_threshold  # noqa: E402
from sky_spot.utils import ClusterType  # noqa: E402

WORK_H, OVERHEAD_H, STARTS = 48.0, 0.2, 40


class SumList(list):
    def __init__(self):
        super().__init__()
        self.total = 0.0

    def append(self, x):
        super().append(x)
        self.total += x

    def __iter__(self):
        return iter([self.total])


class ArrayEnv(env_lib.Env):
    NAME = "hedge_bench_array"

    def __init__(self, avail, gap):
        self.avail = avail
        super().__init__(gap)

    def spot_available(self):
        return self.avail[self.tick]


def load(path):
    d = json.load(open(path))
    m = d["metadata"]
    gap = float(m["gap_seconds"])
    sky_format = "price_info" in m  # sky_spot format: 1 = preempted
    avail = [(v == 0) if sky_format else (v > 0) for v in d["data"]]
    return avail, gap


def run_up(avail, gap, start, prices_spot, od):
    n = len(avail)
    env = ArrayEnv([avail[(start + i) % n] for i in range(int(deadline_h * 3600 / gap) + 400)], gap)
    args = types.SimpleNamespace(deadline_hours=deadline_h, restart_overhead_hours=[OVERHEAD_H], inter_task_overhead=[0.0])
    s = rc_cr_threshold.RCCRThresholdStrategy(args)
    task = task_lib.SingleTask({"duration": WORK_H})
    s.reset(env, task)
    s.task_done_time = SumList()
    task.set_progress_source(s.task_done_time)
    while not s.task_done:
        req = s.step()
        if not s.task_done and env.elapsed_seconds >= s.deadline:
            return None  # their simulator raises: deadline exceeded
        env.step(ClusterType.NONE if s.task_done else req)
    cost = 0.0
    for j, c in enumerate(env.cluster_type_histroy):
        if c == ClusterType.SPOT:
            cost += prices_spot[(start + j) % len(prices_spot)] * gap / 3600
        elif c == ClusterType.ON_DEMAND:
            cost += od * gap / 3600
    return cost


hedge = json.load(open(hedge_json))
per_tick = json.load(open(opts["--spot-prices"])) if "--spot-prices" in opts else {}
rows, sav, no_dearer, misses = [], [], 0, 0
for st in hedge:
    path = st["trace"]
    avail, gap = load(path)
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if "--spot-price" in opts:
        spot = [float(opts["--spot-price"])]
    elif stem in per_tick and len(per_tick[stem]) == len(avail):
        spot = per_tick[stem]
    else:
        spot = [0.918]
    od = float(opts.get("--on-demand-price", 3.06))
    # The start points of hedge_sim::deadline::study.
    room = max(len(avail) - (int(deadline_h * 3600 // gap) + 1), 1)
    n = min(STARTS, room)
    costs = []
    for k in range(n):
        c = run_up(avail, gap, k * room // n, spot, od)
        if c is None:
            misses += 1
            c = math.inf
        costs.append(c)
    up = sum(costs) / n
    mean = dict(st["mean_cost"])
    hod, greedy = mean["on-demand"] / 1e6, mean["greedy"] / 1e6
    aa, hup = mean["availability-aware"] / 1e6, mean["uniform-progress"] / 1e6
    opt = mean["omniscient"] / 1e6
    sav.append((1 - up / hod, 1 - hup / hod, 1 - aa / hod, 1 - greedy / hod, 1 - opt / hod))
    no_dearer += up <= greedy + 1e-6
    rows.append(f"{'/'.join(path.split('/')[-2:])}  authors' UP ${up:.2f} ({100 * (1 - up / hod):.1f}%)  Hedge UP ${hup:.2f}  availability-aware ${aa:.2f} ({100 * (1 - aa / hod):.1f}%)  greedy ${greedy:.2f}  omniscient ${opt:.2f}  aa/authors {aa / up:.3f}")
print("\n".join(rows))
m = [sum(x[i] for x in sav) / len(sav) for i in range(5)]
aa_nd = sum(1 for st in hedge if dict(st["mean_cost"])["availability-aware"] <= dict(st["mean_cost"])["greedy"])
print(
    f"deadline {deadline_h:g} h, {len(sav)} traces: mean savings over on-demand: authors' UP {100 * m[0]:.2f}%, Hedge UP {100 * m[1]:.2f}%, "
    f"availability-aware {100 * m[2]:.2f}%, greedy {100 * m[3]:.2f}%, omniscient {100 * m[4]:.2f}%; no dearer than greedy: authors' UP {no_dearer}, availability-aware {aa_nd} of {len(sav)}; "
    f"authors' UP deadline misses {misses}"
)
