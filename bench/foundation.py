#!/usr/bin/env python3
"""Foundation benchmark: for one backend, prints
  - `pave apply` of N services (wall time, events/s), and the no-op re-apply;
  - GET /api/v1/services/{name} latency (p50/p99) at a fixed request rate from pave-loadgen;
  - time from process start to the first answered request on an existing data directory;
  - resident memory of the idle server.
Everything runs on 127.0.0.1 and stops by itself. Run it through bench/foundation.sh."""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAVE = os.path.join(ROOT, "target", "release", "pave")
LOADGEN = os.path.join(ROOT, "target", "release", "pave-loadgen")
TOKEN = "pave_benchadmintoken000000000000000000000000000000"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, data_dir, db_url, port):
        cmd = [PAVE, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir]
        if db_url:
            cmd += ["--database-url", db_url]
        env = dict(os.environ, PAVE_BOOTSTRAP_TOKEN=TOKEN, PAVE_LOG="warn")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout=30):
        """Polls /healthz; returns seconds from spawn to the first 200."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.001)
        raise RuntimeError("server did not answer /healthz")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def catalog(path, n):
    with open(path, "w") as f:
        f.write("kind: Team\nmetadata: {name: bench}\nspec: {type: platform, members: [a@example.com]}\n")
        for i in range(n):
            deps = f"[svc-{i - 1}]" if i % 10 else "[]"
            f.write(
                f"---\nkind: Service\nmetadata: {{name: svc-{i}, labels: {{bench: 'yes', shard: 's{i % 16}'}}}}\n"
                f"spec: {{owner: bench, tier: {i % 4 + 1}, lifecycle: production, tags: [bench, rust],"
                f" description: 'Service number {i}', dependsOn: {deps}}}\n"
            )


def apply(url, path):
    env = dict(os.environ, PAVE_URL=url, PAVE_TOKEN=TOKEN)
    t = time.perf_counter()
    out = subprocess.run([PAVE, "apply", "-f", path, "-o", "json"], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return elapsed, json.loads(out.stdout)


def loadgen(url, rate, duration):
    out = subprocess.run(
        [LOADGEN, "--url", url, "--rate", str(rate), "--duration", str(duration), "--warmup", "1",
         "--connections", "16", "--header", f"Authorization: Bearer {TOKEN}", "--json"],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--duration", type=float, default=10)
    args = ap.parse_args()

    db_url = None
    if args.backend == "postgres":
        base = os.environ["PAVE_TEST_DATABASE_URL"]
        name = f"pave_bench_{os.getpid()}"
        subprocess.run(["psql", base, "-qc", f"CREATE DATABASE {name}"], check=True)
        db_url = base.rsplit("/", 1)[0] + "/" + name

    results = {"backend": args.backend}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = Server(tmp, db_url, port)
        server.wait_ready()
        time.sleep(0.5)
        results["rss_idle_fresh_mb"] = rss_mb(server.proc.pid)

        path = os.path.join(tmp, "catalog.yaml")
        catalog(path, args.services)
        elapsed, out = apply(server.url, path)
        results["apply_s"] = elapsed
        results["apply_events"] = out["events"]
        results["apply_events_per_s"] = out["events"] / elapsed
        elapsed, out = apply(server.url, path)
        assert out["events"] == 0, "re-apply must be a no-op"
        results["reapply_noop_s"] = elapsed

        lat = loadgen(f"{server.url}/api/v1/services/svc-{args.services // 2}", args.rate, args.duration)
        results["get_rate"] = lat["rate"]
        results["get_failed"] = lat["failed"]
        results["get_p50_ms"] = lat["latency_ms"]["p50"]
        results["get_p99_ms"] = lat["latency_ms"]["p99"]
        results["rss_after_load_mb"] = rss_mb(server.proc.pid)
        server.stop()

        starts = []
        rss = []
        for _ in range(5):
            s = Server(tmp, db_url, port)
            starts.append(s.wait_ready() * 1000)
            time.sleep(1.0)
            rss.append(rss_mb(s.proc.pid))
            s.stop()
        results["startup_ms_median"] = statistics.median(starts)
        results["startup_ms_max"] = max(starts)
        results["rss_idle_existing_mb"] = statistics.median(rss)

    r = results
    print(f"\n[{r['backend']}]")
    print(f"  apply {args.services} services: {r['apply_s']:.2f} s, {r['apply_events']} events, "
          f"{r['apply_events_per_s']:.0f} events/s   (target < 5 s on SQLite)")
    print(f"  re-apply unchanged:  {r['reapply_noop_s']:.2f} s, 0 events")
    print(f"  GET service at {args.rate} req/s: achieved {r['get_rate']:.0f} req/s, failed {r['get_failed']}, "
          f"p50 {r['get_p50_ms']:.3f} ms, p99 {r['get_p99_ms']:.3f} ms   (target p99 < 2 ms)")
    print(f"  startup to first answer (existing data dir): median {r['startup_ms_median']:.1f} ms, "
          f"max {r['startup_ms_max']:.1f} ms   (target < 200 ms)")
    print(f"  resident memory idle: {r['rss_idle_existing_mb']:.1f} MB (fresh {r['rss_idle_fresh_mb']:.1f} MB, "
          f"after load {r['rss_after_load_mb']:.1f} MB)   (target < 50 MB)")
    print("  json: " + json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
