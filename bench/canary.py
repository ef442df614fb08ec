#!/usr/bin/env python3
"""A bad canary rolled back automatically under steady load.

Steady open-loop traffic (pave-loadgen) goes through a service's router; v1 serves; v2, which
fails --error-rate of its requests, is deployed as a canary at --weight percent with an
analysis of the router's error rates. For each run this prints:

- the share of failed requests over the steady load that spans the rollout (from a second
  before the deployment to well after the rollback), against the bound weight x error rate;
- the failed share while the canary took traffic (failures over the requests sent between
  the switch to the canary and the switch back, from the events' times at the load's constant
  rate), which should be about weight x error rate itself, and the failures beyond the
  canary's own 5xx answers (the router counts them): what the rollback itself cost, which
  must be none;
- the time from the failed judgement (analysis.failed) to all traffic on stable (the
  route.switched event back to v1 only).

Exits 1 when a run misses a target (share below the bound, no failure added by the
rollback, switch-back under 1 s).
Everything runs on loopback in a temporary data directory and stops by itself.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rollout import LOADGEN, PAVE, TOKEN, api, start_pave, stop_pave  # noqa: E402


def run_cli(base, *args):
    env = dict(os.environ, PAVE_URL=base, PAVE_TOKEN=TOKEN)
    return subprocess.run([PAVE, *args], env=env, capture_output=True, text=True)


def millis(t):
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=1000, help="requests/s through the router (default 1000)")
    p.add_argument("--weight", type=int, default=10, help="canary weight, percent (default 10)")
    p.add_argument("--error-rate", type=float, default=0.2, help="share of the canary's requests that fail (default 0.2)")
    p.add_argument("--runs", type=int, default=3, help="bad canaries deployed one after another (default 3)")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="pave-canary-bench-")
    server = None
    try:
        server, base = start_pave(tmp, "47850-47899")
        analysis = {"metrics": [{"name": "errors", "provider": {"router": {"signal": "error-rate", "minSamples": 50}},
                                 "interval": "500ms", "count": 4, "failureCondition": "result > stable + 0.02"}]}
        docs = {"documents": [
            {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
            {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
            {"kind": "Service", "metadata": {"name": "shop"}, "spec": {"owner": "core", "runtime": {
                "command": PAVE, "args": ["sample"], "replicas": 2,
                "healthCheck": {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "healthyThreshold": 2}},
                "rollout": {"strategy": "canary", "steps": [{"setWeight": args.weight}, {"analysis": analysis},
                                                             {"setWeight": 50}]}}},
        ]}
        api(base, "POST", "/api/v1/apply", docs)
        for v, conf in (("1.0.0", ""), ("2.0.0", f"SAMPLE_FAIL_RATE={args.error_rate}\n")):
            d = os.path.join(tmp, "art", v)
            os.makedirs(d)
            with open(os.path.join(d, "sample.env"), "w") as f:
                f.write(f"# release {v}\n{conf}")
            out = run_cli(base, "release", "create", "shop", "--version", v, "--artifact", d)
            assert out.returncode == 0, out.stderr
        out = run_cli(base, "deploy", "shop", "1.0.0", "--env", "dev")
        assert out.returncode == 0, out.stdout + out.stderr
        url = api(base, "GET", "/api/v1/services/shop/environments/dev/status")["url"]
        bound = args.weight / 100 * args.error_rate
        results = []
        def canary_5xx():
            sig = api(base, "GET", "/api/v1/services/shop/environments/dev/status?minutes=120")["signals"]
            return sum(x["errors"] for x in sig if x["version"] == "2.0.0")

        for run in range(args.runs):
            duration = 12
            errors_before = canary_5xx()
            load = subprocess.Popen([LOADGEN, "--url", url, "--rate", str(args.rate), "--duration", str(duration),
                                     "--warmup", "0.001", "--connections", "32", "--json", "--timeout", "5000"],
                                    stdout=subprocess.PIPE, text=True)
            time.sleep(1)
            out = run_cli(base, "deploy", "shop", "2.0.0", "--env", "dev")
            if out.returncode == 0:
                raise SystemExit(f"the bad canary was not rolled back:\n{out.stdout}{out.stderr}")
            lg, _ = load.communicate(timeout=duration + 30)
            r = json.loads(lg)
            rollout = api(base, "GET", "/api/v1/rollouts?service=shop&environment=dev&limit=1")["rollouts"][0]
            ev = lambda kind: [e for e in api(base, "GET", f"/api/v1/events?kind={kind}&limit=1000")["events"]
                               if e["data"].get("rollout") == rollout["id"]]
            switched = ev("route.switched")
            on = min(millis(e["time"]) for e in switched if e["data"]["weights"].get("2.0.0", 0) > 0)
            judged = millis(ev("analysis.failed")[0]["time"])
            back = min(millis(e["time"]) for e in switched
                       if e["data"]["weights"] == {"1.0.0": 100} and millis(e["time"]) >= judged)
            window_requests = args.rate * (back - on) / 1000
            share_live = r["failed"] / window_requests if window_requests else 0.0
            share = r["failed"] / r["requests"]
            added = r["failed"] - (canary_5xx() - errors_before)
            res = {"run": run + 1, "state": rollout["state"], "reason": rollout.get("reason"),
                   "requests": r["requests"], "failed": r["failed"], "failed_share": round(share, 5),
                   "bound": round(bound, 4), "canary_live_ms": round(back - on),
                   "failed_share_while_canary_live": round(share_live, 4), "failures_added_by_rollback": added,
                   "judgement_to_stable_ms": round(back - judged), "p99_ms": r["latency_ms"]["p99"]}
            results.append(res)
            print(f"run {run + 1}: {r['failed']} of {r['requests']} requests failed = {share:.5f} (bound {args.weight}% x "
                  f"{args.error_rate} = {bound:.4f}); canary live {back - on:.0f} ms, {share_live:.4f} failed meanwhile; "
                  f"failures beyond the canary's own 5xx: {added}; failed judgement -> all traffic on stable "
                  f"{back - judged:.0f} ms", file=sys.stderr)
            time.sleep(1)
        print(json.dumps({"rate": args.rate, "weight": args.weight, "error_rate": args.error_rate, "runs": results},
                         indent=2))
        worst_share = max(x["failed_share"] for x in results)
        worst_switch = max(x["judgement_to_stable_ms"] for x in results)
        added = sum(x["failures_added_by_rollback"] for x in results)
        ok = worst_share < bound and worst_switch < 1000 and added == 0
        print(f"{args.runs} bad canaries at {args.weight}% x {args.error_rate} errors under {args.rate:.0f} req/s: "
              f"worst failed share {worst_share:.5f} (bound {bound:.4f}), failures added by the rollbacks {added}, "
              f"worst judgement-to-stable {worst_switch} ms -> {'OK' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        if server:
            stop_pave(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
