"""Compare Hedge's and SkyPilot's placements (hourly cost) and speed; print a report. Run by run.sh.

usage: python3 compare.py OUT_DIR   (with skypilot.jsonl, hedge/*.json and bench.json inside)
Exit status 1 if any task disagrees on cost and is not listed in INTENTIONAL.
"""
import json
import os
import statistics
import sys

# Tasks where Hedge differs from SkyPilot on purpose, and why (also listed in BENCHMARKS.md).
INTENTIONAL = {
    "15-azure-h100-8": "SkyPilot's Azure rows give Standard_ND96isr_H100_v5 12 H100s; it has 8. Hedge's "
    "override (data/overrides.yaml) fixes the row, so Hedge places H100:8 on Azure and SkyPilot finds none.",
}


def name(path):
    return os.path.splitext(os.path.basename(path))[0]


def main():
    out = sys.argv[1]
    lines = [l for l in open(os.path.join(out, "skypilot.jsonl")) if l.startswith("{")]  # sky also prints progress payloads
    sky = {name(r["task"]): r for r in map(json.loads, lines)}
    bench = json.load(open(os.path.join(out, "bench.json")))
    real = {name(t["task"]): t for t in bench["real"]["tasks"]}
    syn = bench["synthetic"]
    rows, bad = [], []
    for n in sorted(sky):
        h = json.load(open(os.path.join(out, "hedge", n + ".json")))
        s = sky[n]
        hc, sc = h.get("hourly_cost_usd"), s.get("hourly_cost_usd")
        same = (hc is None and sc is None) or (hc is not None and sc is not None and abs(hc - sc) < 1e-5)
        verdict = "same" if same else ("intentional" if n in INTENTIONAL else "DIFFERENT")
        if verdict == "DIFFERENT":
            bad.append(n)
        rows.append((n, h.get("provider") or "-", hc, s.get("provider") or "-", sc, verdict,
                     s["seconds"], s.get("cpu_seconds"), real[n]["ns_per_place"], real[n].get("cpu_ns_per_place")))

    fmt = lambda c: "-" if c is None else f"{c:.4f}"
    print(f"{'task':<26} {'hedge':<8} {'$/h':>10}  {'skypilot':<8} {'$/h':>10}  {'verdict':<11} {'sky s':>6} {'hedge us':>9}")
    for r in rows:
        print(f"{r[0]:<26} {r[1]:<8} {fmt(r[2]):>10}  {r[3]:<8} {fmt(r[4]):>10}  {r[5]:<11} {r[6]:>6.3f} {r[8] / 1e3:>9.2f}")
    for n in sorted(INTENTIONAL):
        if n in sky:
            print(f"intentional: {n}: {INTENTIONAL[n]}")
    print()
    sky_wall = statistics.mean(r[6] for r in rows)
    hedge_wall = statistics.mean(r[8] for r in rows) / 1e9
    print(f"tasks: {len(rows)}; same cost: {sum(r[5] == 'same' for r in rows)}; intentional: "
          f"{sum(r[5] == 'intentional' for r in rows)}; different: {len(bad)}")
    print(f"real catalog ({bench['real']['offers']} offers), mean per task, wall clock:")
    print(f"  skypilot optimize: {sky_wall * 1e3:10.2f} ms")
    print(f"  hedge place:       {hedge_wall * 1e6:10.2f} us")
    print(f"  speed ratio:       {sky_wall / hedge_wall:10.0f}x")
    if all(r[7] is not None and r[9] is not None for r in rows):
        sky_cpu = statistics.mean(r[7] for r in rows)
        hedge_cpu = statistics.mean(r[9] for r in rows) / 1e9
        print(f"  (CPU time: skypilot {sky_cpu * 1e3:.2f} ms, hedge {hedge_cpu * 1e6:.2f} us, ratio {sky_cpu / hedge_cpu:.0f}x)")
    st = syn["tasks"]
    wall = [t["ns_per_place"] for t in st]
    cpu = [t["cpu_ns_per_place"] for t in st if t.get("cpu_ns_per_place") is not None]
    print(f"SYNTHETIC catalog ({syn['offers']} offers; {syn['label']}), per task:")
    print(f"  hedge place wall: mean {statistics.mean(wall) / 1e3:.1f} us, max {max(wall) / 1e3:.1f} us "
          f"({max(st, key=lambda t: t['ns_per_place'])['task']})")
    if len(cpu) == len(st):
        print(f"  hedge place CPU:  mean {statistics.mean(cpu) / 1e3:.1f} us, max {max(cpu) / 1e3:.1f} us")
    print(f"  goal < 1000 us per task: {'met' if max(cpu or wall) < 1e6 else 'NOT met'}")
    if bad:
        print("cost disagreements:", ", ".join(bad))
        for n in bad:
            print(f"  {n}: skypilot said {sky[n]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
