#!/usr/bin/env python3
"""Pave's router against nginx and HAProxy (Debian's packages): same upstream (the sample
service), same load tool (pave-loadgen), same run, loopback only. Prints a JSON report and the
ratios. HAProxy runs as one process with as many threads as the router (--threads), in HTTP
mode with keep-alive and connection reuse to the upstream; nginx with one worker per core.
Targets (issue 16): the router >= 1.1x HAProxy's throughput.

1. Added latency at moderate load: open loop at --rate requests/s through each proxy and
   straight to the upstream; added p50/p99 = proxy's minus the upstream's own.
2. Throughput: closed loop with --connections keep-alive connections for --duration s, in
   --rounds rounds that alternate which proxy goes first; the medians are compared, and the
   CPU each proxy spends per request (from /proc) is printed beside them.

Every process this starts is stopped at the end, also on errors.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


NGINX_CONF = """
worker_processes {workers};
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream sample {{ server 127.0.0.1:{upstream}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://sample;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


HAPROXY_CONF = """
global
    nbthread {threads}
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    http-reuse always
frontend bench
    bind 127.0.0.1:{port}
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    default_backend sample
backend sample
    server sample 127.0.0.1:{upstream} maxconn 256
"""

PROXIES = ("pave-router", "nginx", "haproxy")


def control(sock, request, timeout=15):
    """One request to a `pave router` control socket (one JSON line each way), retried until
    the router answers."""
    deadline = time.time() + timeout
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.connect(sock)
                c.sendall(json.dumps(request).encode() + b"\n")
                reply = c.makefile().readline()
            answer = json.loads(reply)
            if answer.get("reply") == "refused":
                raise SystemExit(f"the router refused {request}: {answer}")
            return answer
        except (FileNotFoundError, ConnectionRefusedError):
            if time.time() > deadline:
                raise SystemExit(f"the router at {sock} did not answer")
            time.sleep(0.05)


def cpu_seconds(root_pid):
    """User+system CPU seconds used so far by a process and its direct children (nginx's
    workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid ... utime (11th) stime (12th).
        if int(pid) == root_pid or int(fields[1]) == root_pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def load(url, args, rate=None, connections=None):
    cmd = [os.path.join(REL, "pave-loadgen"), "--url", url, "--json", "--duration", str(args.duration),
           "--warmup", str(args.warmup), "--connections", str(connections or args.connections)]
    if rate:
        cmd += ["--rate", str(rate)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=2000, help="moderate load, requests/s (default 2000)")
    p.add_argument("--connections", type=int, default=64, help="closed-loop connections (default 64)")
    p.add_argument("--duration", type=float, default=10, help="seconds per run (default 10)")
    p.add_argument("--warmup", type=float, default=2, help="seconds left out at the start (default 2)")
    p.add_argument("--rounds", type=int, default=3,
                   help="closed-loop rounds per proxy, alternating which goes first; medians are reported (default 3)")
    p.add_argument("--nginx-workers", default="auto", help="nginx worker_processes (default auto: one per core)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                   help="the router's worker threads and HAProxy's nbthread (default: one per core)")
    args = p.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise SystemExit("nginx is not installed: apt-get install nginx-light")
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(haproxy):
        raise SystemExit("haproxy is not installed: apt-get install haproxy")
    procs = []
    tmp = tempfile.mkdtemp(prefix="pave-router-bench-")
    try:
        up = free_port()
        env = dict(os.environ, PORT=str(up), PAVE_SAMPLE_VERSION="bench")
        procs.append(subprocess.Popen([os.path.join(REL, "pave"), "sample"], env=env, stderr=subprocess.DEVNULL))
        wait_port(up)
        rport = free_port()
        # The router as it runs in production: the `pave router` process, steered over its
        # control socket as `pave serve` steers it.
        sock = os.path.join(tmp, "router", "control.sock")
        procs.append(subprocess.Popen([os.path.join(REL, "pave"), "router", "--socket", sock,
                                       "--threads", str(args.threads)],
                                      stdout=subprocess.DEVNULL, env=dict(os.environ, PAVE_LOG="warn")))
        control(sock, {"op": "listen", "service": "bench", "env": "bench", "port": rport})
        control(sock, {"op": "set", "service": "bench", "env": "bench", "table": {"sticky": False, "versions": [
            {"version": "1", "weight": 100, "backends": [f"127.0.0.1:{up}"]}]}})
        wait_port(rport)
        nport = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(workers=args.nginx_workers, prefix=tmp, upstream=up, port=nport))
        procs.append(subprocess.Popen([nginx, "-c", conf, "-p", tmp, "-g", "daemon off;"], stderr=subprocess.DEVNULL))
        wait_port(nport)
        hport = free_port()
        hconf = os.path.join(tmp, "haproxy.cfg")
        with open(hconf, "w") as f:
            f.write(HAPROXY_CONF.format(threads=args.threads, upstream=up, port=hport))
        # -db: stay in the foreground (no daemon, no master), so the pid is the proxy's own.
        procs.append(subprocess.Popen([haproxy, "-db", "-f", hconf], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_port(hport)
        urls = {"upstream": f"http://127.0.0.1:{up}/", "pave-router": f"http://127.0.0.1:{rport}/",
                "nginx": f"http://127.0.0.1:{nport}/", "haproxy": f"http://127.0.0.1:{hport}/"}
        report = {"moderate": {}, "throughput": {}}
        for name, url in urls.items():
            r = load(url, args, rate=args.rate, connections=16)
            report["moderate"][name] = {"rate": r["rate"], "failed": r["failed"], **r["latency_ms"]}
            print(f"moderate {name:12} {r['rate']:8.0f} req/s  p50 {r['latency_ms']['p50']:.3f} ms  "
                  f"p99 {r['latency_ms']['p99']:.3f} ms  failed {r['failed']}", file=sys.stderr)
        pids = {"upstream": procs[0].pid, "pave-router": procs[1].pid, "nginx": procs[2].pid,
                "haproxy": procs[3].pid}
        runs = {name: [] for name in PROXIES}
        for rnd in range(args.rounds):
            # Rotate which proxy goes first: a slow stretch of the VM then hits all alike.
            k = rnd % len(PROXIES)
            order = PROXIES[k:] + PROXIES[:k]
            for name in order:
                before = cpu_seconds(pids[name])
                r = load(urls[name], args)
                # CPU per request is the figure least moved by a noisy neighbour. The CPU covers
                # the warm-up too, so the requests are estimated over the whole run at its rate.
                used = cpu_seconds(pids[name]) - before
                us = used / max(r["rate"] * args.duration, 1) * 1e6
                runs[name].append({"rate": r["rate"], "failed": r["failed"], "cpu_us_per_request": us,
                                   **r["latency_ms"]})
                print(f"closed   {name:12} round {rnd + 1}: {r['rate']:8.0f} req/s  p99 {r['latency_ms']['p99']:.3f} ms  "
                      f"cpu {us:6.2f} us/req  failed {r['failed']}", file=sys.stderr)
        for name, rs in runs.items():
            report["throughput"][name] = {
                "rate": statistics.median(x["rate"] for x in rs),
                "cpu_us_per_request": round(statistics.median(x["cpu_us_per_request"] for x in rs), 2),
                "p99": statistics.median(x["p99"] for x in rs),
                "failed": sum(x["failed"] for x in rs),
                "rounds": [round(x["rate"]) for x in rs],
            }
        r = load(urls["upstream"], args)
        report["throughput"]["upstream"] = {"rate": r["rate"], "failed": r["failed"], **r["latency_ms"]}
        m, t = report["moderate"], report["throughput"]
        added = {k: {q: round(m[k][q] - m["upstream"][q], 3) for q in ("p50", "p99")} for k in PROXIES}
        report["added_latency_ms"] = added
        for peer in ("nginx", "haproxy"):
            # Per-round ratios (the router's run and the peer's in the same round) show the noise.
            per_round = [a["rate"] / b["rate"] for a, b in zip(runs["pave-router"], runs[peer])]
            report[f"throughput_ratio_router_over_{peer}"] = round(t["pave-router"]["rate"] / t[peer]["rate"], 3)
            report[f"round_ratios_router_over_{peer}"] = [round(x, 3) for x in per_round]
        print(json.dumps(report, indent=2))
        print(f"throughput (median of {args.rounds} rounds, router {args.threads} threads, haproxy nbthread "
              f"{args.threads}, nginx workers {args.nginx_workers}): "
              + ", ".join(f"{n} {t[n]['rate']:.0f} req/s" for n in PROXIES))
        for peer, target in (("haproxy", 1.1), ("nginx", None)):
            rr = report[f"round_ratios_router_over_{peer}"]
            ratio = report[f"throughput_ratio_router_over_{peer}"]
            verdict = "" if target is None else f" (target >= {target}x: {'met' if ratio >= target else 'NOT met'})"
            print(f"ratio pave-router / {peer}: {ratio:.2f}x{verdict}; per round {min(rr):.2f}x..{max(rr):.2f}x")
        print("proxy CPU per request: " + ", ".join(f"{n} {t[n]['cpu_us_per_request']:.2f} us" for n in PROXIES))
        print(f"added latency at {args.rate:.0f} req/s: " + "; ".join(
            f"{n} p50 {added[n]['p50']:.3f} ms p99 {added[n]['p99']:.3f} ms" for n in PROXIES))
    finally:
        for pr in procs:
            pr.send_signal(signal.SIGTERM)
        for pr in procs:
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
