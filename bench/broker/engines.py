#!/usr/bin/env python3
"""1,000 short jobs through the three Slurm test clusters: Hedge (hedge serve, three `owned:` Slurm providers)
against sbatch-ing the same jobs directly, in one run. Called by bench/broker/engines (which starts the
clusters and builds hedge).

Direct: one thread per cluster runs `sbatch --gpus-per-node=1 --wrap true` for its third of the jobs; the
per-job overhead is the sbatch call's duration (submit to accepted), the total is from the first sbatch to
the last job leaving squeue.
Hedge: the jobs are POSTed to /v1/jobs (8 at a time); the per-job overhead is the broker's
hedge_submit_to_launch_seconds histogram (submit to the Slurm job accepted, p50/p99 interpolated within its
x1.5 buckets), the total is from the first POST to the last job succeeded.
"""
import concurrent.futures as cf, json, os, re, subprocess, sys, tempfile, time, urllib.request

hedge, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000
clusters = ["HEDGE_A", "HEDGE_B", "HEDGE_C"]
confs = {c: os.environ[f"{c}_CONF"] for c in clusters}


def squeue_empty():
    for conf in confs.values():
        out = subprocess.run(["squeue", "-h", "-t", "PD,R,CG"], env={**os.environ, "SLURM_CONF": conf},
                             capture_output=True, text=True)
        if out.stdout.strip():
            return False
    return True


def clear():
    for conf in confs.values():
        subprocess.run(["scancel", "-u", "root"], env={**os.environ, "SLURM_CONF": conf})
    while not squeue_empty():
        time.sleep(0.2)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def direct():
    clear()
    durations = []
    def run(c, k):
        env = {**os.environ, "SLURM_CONF": confs[c]}
        out = []
        for i in range(k):
            t = time.monotonic()
            subprocess.run(["sbatch", "--parsable", "-J", f"direct-{i}", "--gpus-per-node=1", "-o", "/dev/null",
                            "--wrap", "true"], env=env, check=True, capture_output=True)
            out.append(time.monotonic() - t)
        return out
    t0 = time.monotonic()
    shares = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    with cf.ThreadPoolExecutor(3) as ex:
        for d in ex.map(run, clusters, shares):
            durations += d
    while not squeue_empty():
        time.sleep(0.1)
    return time.monotonic() - t0, durations


def free_port():
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def histogram_quantiles(text, name, qs):
    buckets = []
    for m in re.finditer(rf'^{name}_bucket\{{le="([^"]+)"\}} (\d+)', text, re.M):
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        buckets.append((le, int(m.group(2))))
    total = buckets[-1][1] if buckets else 0
    out = []
    for q in qs:
        target, prev_le, prev_n = q * total, 0.0, 0
        for le, cnt in buckets:
            if cnt >= target:
                if le == float("inf"):
                    out.append(prev_le)
                else:
                    frac = (target - prev_n) / max(1, cnt - prev_n)
                    out.append(prev_le + frac * (le - prev_le))
                break
            prev_le, prev_n = le, cnt
    return total, out


def via_hedge():
    clear()
    d = tempfile.mkdtemp(prefix="hedge-bench-engines.", dir="/var/tmp")
    port = free_port()
    prov = ""
    for c, cost in zip(clusters, ["1.0", "1.5", "2.0"]):
        name = c.lower().replace("_", "-")
        prov += (f"  - name: {name}\n    owned: {{ accelerator: H100, gpus_per_node: 8, nodes: 2, cost_per_gpu_hour: {cost} }}\n"
                 f"    driver: {{ kind: slurm, endpoint: '{os.environ[c + '_URL']}', credentials: {{ env: {c}_TOKEN }}, timeout_ms: 3000 }}\n")
    cfg = f"listen: 127.0.0.1:{port}\ndata_dir: {d}\nreconcile_interval_ms: 50\nproviders:\n{prov}teams:\n  - {{ id: bench }}\n"
    open(f"{d}/hedge.yaml", "w").write(cfg)
    server = subprocess.Popen([hedge, "serve", "--config", f"{d}/hedge.yaml", "--log-level", "warn"],
                              stdout=subprocess.DEVNULL, stderr=open(f"{d}/server.log", "w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1); break
        except Exception:
            time.sleep(0.1)
    token = open(f"{d}/admin.token").read().strip()
    def post(i):
        req = urllib.request.Request(f"{url}/v1/jobs", method="POST", headers={"Authorization": f"Bearer {token}"},
                                     data=f"name: b{i}\nteam: bench\nresources: {{accelerators: H100:1}}\nrun: 'true'\n".encode())
        urllib.request.urlopen(req, timeout=30).read()
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(8) as ex:
        list(ex.map(post, range(n)))
    def metrics():
        req = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
        return urllib.request.urlopen(req, timeout=10).read().decode()
    while True:
        m = re.search(r'^hedge_jobs\{state="(succeeded)"\} (\d+)', metrics(), re.M)
        failed = re.search(r'^hedge_jobs\{state="failed"\} (\d+)', metrics(), re.M)
        if failed and int(failed.group(1)) > 0:
            raise SystemExit(f"hedge: {failed.group(1)} jobs failed; see {d}/server.log")
        if m and int(m.group(2)) >= n:
            break
        time.sleep(0.1)
    total = time.monotonic() - t0
    samples, (p50, p99) = histogram_quantiles(metrics(), "hedge_submit_to_launch_seconds", [0.5, 0.99])
    server.terminate(); server.wait()
    return total, samples, p50, p99


dt, durations = direct()
ht, samples, hp50, hp99 = via_hedge()
print(f"{n} jobs (1 GPU, `true`) through three Slurm 22.05 clusters of 16 GPUs each, loopback")
print(f"  direct sbatch : total {dt:7.1f} s   per-job submit p50 {1000*pct(durations, .5):7.1f} ms  p99 {1000*pct(durations, .99):7.1f} ms")
print(f"  hedge         : total {ht:7.1f} s   submit-to-sbatch-accepted p50 {1000*hp50:7.1f} ms  p99 {1000*hp99:7.1f} ms  ({samples} samples)")
print(f"  total time hedge/direct: {ht/dt:.2f}x")
