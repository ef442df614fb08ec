#!/usr/bin/env python3
"""Flag API load benchmark. Starts `pave serve` (release build, SQLite) on 127.0.0.1 with 20
flags of every strategy kind (constraints, segments, variants), creates an SDK token, and
drives with pave-loadgen (same machine, same 2 cores):
  - GET /api/client/features, full body (the Unleash server-SDK poll);
  - GET /api/client/features with If-None-Match (the 304 path most polls take);
  - POST /ofrep/v1/evaluate/flags/{key} (one OFREP evaluation with a context);
each first closed loop (peak requests/s), then open loop at --rate (p99 at that rate, which
corrects for coordinated omission). Resident memory is sampled every 0.5 s during the load
to show whether it stays flat. Targets (issue 6): full body >= 20,000 req/s, p99 < 5 ms.
Every run stops by itself. Run it through bench/flags_api.sh."""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
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


def flags_yaml(n):
    """n flags mixing what SDKs meet in practice."""
    out = [
        "kind: Environment\nmetadata: {name: production}\nspec: {order: 1, production: true}\n",
        "kind: Segment\nmetadata: {name: beta}\nspec:\n  constraints:\n"
        "    - {contextName: plan, operator: IN, values: [beta, trial]}\n",
    ]
    for i in range(n):
        kind = i % 5
        if kind == 0:
            strategies = ("        - name: flexibleRollout\n          parameters: {rollout: 50, stickiness: default}\n"
                          "          constraints:\n"
                          "            - {contextName: region, operator: IN, values: [eu, us]}\n"
                          "            - {contextName: appVersion, operator: SEMVER_GTE, value: 2.0.0}\n")
        elif kind == 1:
            strategies = "        - name: userWithId\n          parameters: {userIds: 'u1,u2,u3,u4'}\n"
        elif kind == 2:
            strategies = ("        - name: default\n          segments: [beta]\n"
                          "          constraints:\n"
                          "            - {contextName: email, operator: STR_ENDS_WITH, values: ['@example.com'],"
                          " caseInsensitive: true}\n")
        elif kind == 3:
            strategies = "        - name: remoteAddress\n          parameters: {IPs: '10.0.0.0/8, 192.168.1.1'}\n"
        else:
            strategies = "        - name: flexibleRollout\n          parameters: {rollout: 25}\n"
        variants = ("      variants:\n        - {name: blue, payload: {type: string, value: b}}\n"
                    "        - {name: green}\n") if i % 3 == 0 else ""
        out.append(f"kind: Flag\nmetadata: {{name: flag-{i:02}}}\nspec:\n  type: release\n  environments:\n"
                   f"    production:\n      enabled: true\n      strategies:\n{strategies}{variants}")
    return "---\n".join(out)


def pave(url, *args):
    env = dict(os.environ, PAVE_URL=url, PAVE_TOKEN=TOKEN)
    out = subprocess.run([PAVE, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout


def loadgen(url, args, rate=None, duration=10, connections=64, method="GET", headers=(), body=None):
    cmd = [LOADGEN, "--url", url, "--duration", str(duration), "--warmup", "2", "--connections",
           str(connections), "--threads", str(args.loadgen_threads), "--method", method, "--json"]
    if rate:
        cmd += ["--rate", str(rate)]
    for h in headers:
        cmd += ["--header", h]
    if body:
        cmd += ["--body-file", body]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(rss_mb(self.pid))
            time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flags", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--loadgen-threads", type=int, default=1)
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="pave-flags-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PAVE_BOOTSTRAP_TOKEN=TOKEN, PAVE_LOG="warn")
    proc = subprocess.Popen([PAVE, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        path = os.path.join(data, "flags.yaml")
        with open(path, "w") as f:
            f.write(flags_yaml(args.flags))
        pave(url, "apply", "-f", path)
        out = json.loads(pave(url, "flags", "token", "create", "bench", "--env", "production", "-o", "json"))
        secret = out["secret"]
        time.sleep(0.5)
        req = urllib.request.Request(url + "/api/client/features", headers={"Authorization": secret})
        with urllib.request.urlopen(req) as r:
            body = r.read()
            etag = r.headers["ETag"]
        features = json.loads(body)["features"]
        assert len(features) == args.flags, len(features)
        ctx_path = os.path.join(data, "ctx.json")
        with open(ctx_path, "w") as f:
            json.dump({"context": {"targetingKey": "user-42", "region": "eu", "appVersion": "2.3.1",
                                   "plan": "beta", "email": "a@example.com"}}, f)

        auth = f"Authorization: {secret}"
        cases = [
            ("client/features full body", url + "/api/client/features", "GET", [auth], None),
            ("client/features 304", url + "/api/client/features", "GET", [auth, f"If-None-Match: {etag}"], None),
            ("OFREP single evaluation", url + "/ofrep/v1/evaluate/flags/flag-00", "POST",
             [auth, "Content-Type: application/json"], ctx_path),
        ]
        print(f"pave serve, {args.flags} flags ({len(body)} bytes of JSON), SQLite, loopback; "
              f"pave-loadgen {args.connections} connections on the same 2 cores")
        results = {}
        for name, target, method, headers, bodyf in cases:
            sampler = Sampler(proc.pid)
            sampler.start()
            peak = loadgen(target, args, None, args.duration, args.connections, method, headers, bodyf)
            fixed = loadgen(target, args, args.rate, args.duration, args.connections, method, headers, bodyf)
            sampler.stop.set()
            sampler.join()
            rss = sampler.samples
            ok = fixed["failed"] == 0 and peak["failed"] == 0
            results[name] = {"peak": peak, "fixed": fixed, "rss": rss}
            print(f"\n{name}:")
            print(f"  closed loop: {peak['rate']:,.0f} req/s, p50 {peak['latency_ms']['p50']:.2f} ms, "
                  f"p99 {peak['latency_ms']['p99']:.2f} ms, failed {peak['failed']}")
            print(f"  open loop at {args.rate:,.0f}/s: {fixed['rate']:,.0f} req/s answered, p50 "
                  f"{fixed['latency_ms']['p50']:.2f} ms, p99 {fixed['latency_ms']['p99']:.2f} ms, "
                  f"p99.9 {fixed['latency_ms']['p999']:.2f} ms, failed {fixed['failed']}"
                  f"{'' if ok else '  <-- FAILURES'}")
            third = max(1, len(rss) // 3)
            print(f"  resident memory during load: first third max {max(rss[:third]):.1f} MB, "
                  f"last third max {max(rss[-third:]):.1f} MB (min {min(rss):.1f}, max {max(rss):.1f})")
        full = results["client/features full body"]
        meets = full["peak"]["rate"] >= 20000 and full["fixed"]["latency_ms"]["p99"] < 5 and full["fixed"]["failed"] == 0
        print(f"\ntarget (full body >= 20,000 req/s, p99 < 5 ms at {args.rate:,.0f}/s): {'met' if meets else 'NOT met'}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
