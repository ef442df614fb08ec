#!/usr/bin/env python3
"""The data plane outlives the control plane: steady open-loop traffic (pave-loadgen) through a
service's router while `pave serve` is SIGKILLed and restarted in the middle of a rolling
update, a blue-green rollout and a canary analysis, and while the `pave` binary is upgraded
(SIGTERM, the binary's file replaced, started again). Prints the failed requests of each case
and exits 1 if any failed; then, apart, what a restart of the router itself costs (it drains,
and connections are refused until the new one listens: a separate event, not a target).

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
BUILT = os.path.join(ROOT, "target", "release", "pave")
LOADGEN = os.path.join(ROOT, "target", "release", "pave-loadgen")
TOKEN = "pave_benchadmintoken000000000000000000000000000000"


def api(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


class Platform:
    def __init__(self, tmp, program):
        self.tmp, self.program, self.server, self.base = tmp, program, None, None

    def start(self):
        # No --stop-replicas-on-exit: a control plane that stops leaves replicas and router
        # serving, as in production.
        self.server = subprocess.Popen(
            [self.program, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.tmp, "data"),
             "--router-ports", "47850-47899"],
            env=dict(os.environ, PAVE_BOOTSTRAP_TOKEN=TOKEN, PAVE_LOG="warn"), stdout=subprocess.PIPE, text=True)
        for line in self.server.stdout:
            if line.startswith("pave: listening on "):
                self.base = line.split()[-1]
                return
        raise SystemExit("pave serve exited before listening")

    def kill(self):
        self.server.kill()
        self.server.wait()

    def term(self):
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=30)

    def cli(self, *args):
        env = dict(os.environ, PAVE_URL=self.base, PAVE_TOKEN=TOKEN)
        out = subprocess.run([self.program, *args], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"pave {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
        return out.stdout

    def latest(self):
        return api(self.base, "GET", "/api/v1/rollouts?service=shop&environment=dev&limit=1")["rollouts"][0]

    def wait(self, rollout, states, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = api(self.base, "GET", f"/api/v1/rollouts/{rollout}")["rollout"]
            if r["state"] in states:
                return r
            time.sleep(0.1)
        raise SystemExit(f"rollout {rollout} did not reach {states}")

    def wait_step(self, rollout, step):
        deadline = time.time() + 60
        while time.time() < deadline:
            if api(self.base, "GET", f"/api/v1/rollouts/{rollout}")["rollout"]["step"] >= step:
                return
            time.sleep(0.05)
        raise SystemExit(f"rollout {rollout} did not reach step {step}")


def load(url, rate, seconds):
    return subprocess.Popen([LOADGEN, "--url", url, "--rate", str(rate), "--duration", str(seconds),
                             "--connections", "16", "--json", "--timeout", "5000"], stdout=subprocess.PIPE, text=True)


def finish(gen):
    out, _ = gen.communicate(timeout=120)
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=200, help="requests/s through the router (default 200)")
    p.add_argument("--replicas", type=int, default=3)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="pave-failover-bench-")
    # The control plane runs from a copy, so the upgrade case can replace the file under it.
    program = os.path.join(tmp, "pave")
    shutil.copy2(BUILT, program)
    pf = Platform(tmp, program)
    results, ok = [], True
    try:
        pf.start()
        api(pf.base, "POST", "/api/v1/apply", {"documents": [
            {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
            {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
            {"kind": "Service", "metadata": {"name": "shop"}, "spec": {"owner": "core", "runtime": {
                "command": program, "args": ["sample"], "replicas": args.replicas, "startTimeout": "10s",
                "healthCheck": {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "healthyThreshold": 1}},
                "rollout": {"strategy": "canary", "keepWarm": "0s", "steps": [
                    {"setWeight": 5},
                    {"analysis": {"metrics": [{"name": "errors", "interval": "1s", "count": 3,
                                               "provider": {"router": {"signal": "error-rate", "minSamples": 5}},
                                               "failureCondition": "result > stable + 0.05"}]}},
                    {"setWeight": 50}, {"pause": {"duration": "1s"}}]}}},
        ]})
        for i in range(8):
            d = os.path.join(tmp, "art", str(i))
            os.makedirs(d)
            with open(os.path.join(d, "sample.env"), "w") as f:
                # Slow starts keep each rollout going long enough to be killed in its middle.
                f.write("SAMPLE_STARTUP_MS=700\n")
            pf.cli("release", "create", "shop", "--version", f"1.{i}.0", "--artifact", d)
        pf.cli("deploy", "shop", "1.0.0", "--env", "dev", "--strategy", "rolling")
        url = api(pf.base, "GET", "/api/v1/services/shop/environments/dev/status")["url"]

        def case(name, act):
            gen = load(url, args.rate, 20)
            time.sleep(1.5)
            t = time.time()
            act()
            took = time.time() - t
            r = finish(gen)
            results.append((name, r["requests"], r["failed"], took))
            print(f"{name:58} {r['requests']:6} requests, {r['failed']:4} failed ({took:.1f} s)", file=sys.stderr)
            return r["failed"] == 0

        def kill_mid(version, step, *strategy):
            """Deploys `version`, SIGKILLs the control plane once the rollout reached `step`,
            starts it again and returns the rollout."""
            pf.cli("deploy", "shop", version, "--env", "dev", *strategy, "--no-wait")
            r = pf.latest()
            pf.wait_step(r["id"], step)
            pf.kill()
            pf.start()
            return r

        def rolling():
            pf.wait(kill_mid("1.1.0", 3, "--strategy", "rolling")["id"], ["succeeded"])

        def blue_green():
            pf.wait(kill_mid("1.2.0", 1, "--strategy", "blue-green")["id"], ["succeeded"])

        def canary():
            r = kill_mid("1.3.0", 2)
            if pf.wait(r["id"], ["succeeded", "awaiting-promotion"])["state"] == "awaiting-promotion":
                pf.cli("rollout", "promote", "shop", "--env", "dev")
                pf.wait(r["id"], ["succeeded"])

        def upgrade():
            pf.term()
            # A new build lands on the path the old one ran from (a new file: the old keeps
            # running from its deleted inode, as after a package upgrade).
            os.remove(program)
            shutil.copy2(BUILT, program)
            pf.start()
            pf.cli("deploy", "shop", "1.4.0", "--env", "dev", "--strategy", "rolling")

        ok &= case("SIGKILL + restart of pave serve mid rolling update", rolling)
        ok &= case("SIGKILL + restart of pave serve mid blue-green rollout", blue_green)
        ok &= case("SIGKILL + restart of pave serve mid canary", canary)
        ok &= case("upgrade of the pave binary (SIGTERM, replace, start), then deploy", upgrade)

        def router_restart():
            pid = int(open(os.path.join(tmp, "data", "router", "pid")).read())
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    if int(open(os.path.join(tmp, "data", "router", "pid")).read()) != pid:
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.05)
            time.sleep(2)
        case("(apart) SIGTERM of the router; pave serve starts it again", router_restart)
        print(json.dumps({"rate": args.rate, "replicas": args.replicas, "cases": [
            {"case": n, "requests": req, "failed": f, "seconds": round(s, 2)} for n, req, f, s in results]}, indent=2))
        print("zero failed requests across every control-plane kill and the upgrade" if ok
              else "FAILED: requests were lost while the control plane was away")
        return 0 if ok else 1
    finally:
        if pf.server and pf.server.poll() is None:
            pf.term()
        # The control plane was stopped as in production, so its replicas and router still run:
        # stop them by the marks in their environment (never by name), then remove the data.
        data = os.path.realpath(os.path.join(tmp, "data"))
        for mark in (f"PAVE_OWNER={data}", f"PAVE_ROUTER_OF={data}"):
            for pid in marked(mark):
                try:
                    os.killpg(pid, signal.SIGTERM)
                except OSError:
                    pass
        time.sleep(0.5)
        shutil.rmtree(tmp, ignore_errors=True)


def marked(mark):
    """Pids of the process-group leaders whose environment holds `mark` exactly."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            if mark.encode() in env and os.getpgid(int(entry)) == int(entry):
                out.append(int(entry))
        except OSError:
            pass
    return out


if __name__ == "__main__":
    sys.exit(main())
