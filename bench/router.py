#!/usr/bin/env python3
"""Pave's router against nginx: same upstream (the sample service), same load tool
(pave-loadgen), same run, loopback only. Prints a JSON report and the ratios.

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
    args = p.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise SystemExit("nginx is not installed: apt-get install nginx-light")
    procs = []
    tmp = tempfile.mkdtemp(prefix="pave-router-bench-")
    try:
        up = free_port()
        env = dict(os.environ, PORT=str(up), PAVE_SAMPLE_VERSION="bench")
        procs.append(subprocess.Popen([os.path.join(REL, "pave"), "sample"], env=env, stderr=subprocess.DEVNULL))
        wait_port(up)
        rport = free_port()
        procs.append(subprocess.Popen([os.path.join(REL, "examples", "proxy"), f"127.0.0.1:{rport}", f"127.0.0.1:{up}"],
                                      stdout=subprocess.DEVNULL))
        wait_port(rport)
        nport = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(workers=args.nginx_workers, prefix=tmp, upstream=up, port=nport))
        procs.append(subprocess.Popen([nginx, "-c", conf, "-p", tmp, "-g", "daemon off;"], stderr=subprocess.DEVNULL))
        wait_port(nport)
        urls = {"upstream": f"http://127.0.0.1:{up}/", "pave-router": f"http://127.0.0.1:{rport}/",
                "nginx": f"http://127.0.0.1:{nport}/"}
        report = {"moderate": {}, "throughput": {}}
        for name, url in urls.items():
            r = load(url, args, rate=args.rate, connections=16)
            report["moderate"][name] = {"rate": r["rate"], "failed": r["failed"], **r["latency_ms"]}
            print(f"moderate {name:12} {r['rate']:8.0f} req/s  p50 {r['latency_ms']['p50']:.3f} ms  "
                  f"p99 {r['latency_ms']['p99']:.3f} ms  failed {r['failed']}", file=sys.stderr)
        pids = {"upstream": procs[0].pid, "pave-router": procs[1].pid, "nginx": procs[2].pid}
        runs = {"pave-router": [], "nginx": []}
        for rnd in range(args.rounds):
            # Alternate which proxy goes first: a slow stretch of the VM then hits both alike.
            order = ("pave-router", "nginx") if rnd % 2 == 0 else ("nginx", "pave-router")
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
        added = {k: {q: round(m[k][q] - m["upstream"][q], 3) for q in ("p50", "p99")} for k in ("pave-router", "nginx")}
        report["added_latency_ms"] = added
        report["throughput_ratio_router_over_nginx"] = round(t["pave-router"]["rate"] / t["nginx"]["rate"], 3)
        print(json.dumps(report, indent=2))
        print(f"throughput (median of {args.rounds} rounds): pave-router {t['pave-router']['rate']:.0f} req/s "
              f"vs nginx {t['nginx']['rate']:.0f} req/s -> ratio {report['throughput_ratio_router_over_nginx']:.2f}x")
        print(f"proxy CPU per request: pave-router {t['pave-router']['cpu_us_per_request']:.2f} us vs nginx "
              f"{t['nginx']['cpu_us_per_request']:.2f} us")
        print(f"added latency at {args.rate:.0f} req/s: pave-router p50 {added['pave-router']['p50']:.3f} ms "
              f"p99 {added['pave-router']['p99']:.3f} ms; nginx p50 {added['nginx']['p50']:.3f} ms "
              f"p99 {added['nginx']['p99']:.3f} ms")
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
