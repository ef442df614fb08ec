#!/usr/bin/env python3
"""Zero-downtime check under load: steady open-loop traffic (pave-loadgen) through a service's
router while Pave runs a rolling update, a blue-green switch and a rollback (undo) of the
sample service (2 replicas). Counts and prints every failed request; exits 1 if any failed.
Everything runs on loopback in a temporary data directory and stops by itself.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAVE = os.path.join(ROOT, "target", "release", "pave")
LOADGEN = os.path.join(ROOT, "target", "release", "pave-loadgen")
TOKEN = "pave_benchadmintoken000000000000000000000000000000"


def api(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def start_pave(data_dir, router_ports):
    """Starts `pave serve` on a free loopback port; returns the process and its base URL."""
    server = subprocess.Popen([PAVE, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                               "--router-ports", router_ports, "--stop-replicas-on-exit"],
                              env=dict(os.environ, PAVE_BOOTSTRAP_TOKEN=TOKEN, PAVE_LOG="warn"),
                              stdout=subprocess.PIPE, text=True)
    for line in server.stdout:
        if line.startswith("pave: listening on "):
            return server, line.split()[-1]
    raise SystemExit("pave serve exited before listening")


def stop_pave(server):
    """SIGTERM (its replicas stop with it), SIGKILL after 30 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def cli(base, *args):
    env = dict(os.environ, PAVE_URL=base, PAVE_TOKEN=TOKEN)
    t = time.time()
    out = subprocess.run([PAVE, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"pave {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return time.time() - t, out.stdout


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=1000, help="requests/s through the router (default 1000)")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--cycles", type=int, default=5, help="rolling + blue-green + undo cycles under load (default 5)")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="pave-rollout-bench-")
    server = None
    try:
        server, base = start_pave(tmp, "47800-47849")
        docs = {"documents": [
            {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
            {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
            {"kind": "Service", "metadata": {"name": "shop"}, "spec": {"owner": "core", "runtime": {
                "command": PAVE, "args": ["sample"], "replicas": args.replicas,
                "healthCheck": {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "healthyThreshold": 2}},
                "rollout": {"strategy": "rolling", "keepWarm": "60s"}}},
        ]}
        api(base, "POST", "/api/v1/apply", docs)
        versions = [f"1.{i}.0" for i in range(2 * args.cycles + 1)]
        for v in versions:
            d = os.path.join(tmp, "art", v)
            os.makedirs(d)
            with open(os.path.join(d, "sample.env"), "w") as f:
                f.write(f"# release {v}\n")
            cli(base, "release", "create", "shop", "--version", v, "--artifact", d)
        cli(base, "deploy", "shop", versions[0], "--env", "dev")
        url = api(base, "GET", "/api/v1/services/shop/environments/dev/status")["url"]
        duration = 10 + 5 * args.cycles
        load = subprocess.Popen([LOADGEN, "--url", url, "--rate", str(args.rate), "--duration", str(duration),
                                 "--connections", "32", "--json", "--timeout", "5000"], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        steps = {}
        for c in range(args.cycles):
            a, b = versions[2 * c + 1], versions[2 * c + 2]
            steps[f"rolling -> {a}"], _ = cli(base, "deploy", "shop", a, "--env", "dev")
            steps[f"blue-green {a} -> {b}"], _ = cli(base, "deploy", "shop", b, "--env", "dev", "--strategy", "blue-green")
            steps[f"rollback (undo) {b} -> {a}"], _ = cli(base, "rollout", "undo", "shop", "--env", "dev")
            time.sleep(1)
        out, _ = load.communicate(timeout=duration + 30)
        r = json.loads(out)
        status = api(base, "GET", "/api/v1/services/shop/environments/dev/status")
        for name, secs in steps.items():
            print(f"{name:32} {secs:6.2f} s", file=sys.stderr)
        print(json.dumps({"rate": args.rate, "steps_s": steps, "requests": r["requests"], "failed": r["failed"],
                          "responses": r["responses"], "latency_ms": r["latency_ms"],
                          "serving": [v["version"] for v in status["desired"]["versions"] if v["weight"] == 100]},
                         indent=2))
        print(f"{r['requests']} requests at {args.rate:.0f}/s during {args.cycles} x (rolling update, blue-green "
              f"switch, rollback): {r['failed']} failed")
        return 0 if r["failed"] == 0 else 1
    finally:
        if server:
            stop_pave(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
