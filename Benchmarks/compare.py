#!/usr/bin/env python3
"""Weft against a direct connection, nginx and HAProxy, measured side by side in one run.

Topology (2 cores): every proxy is pinned to core 0; the load generator and the upstream share
core 1. The upstream is nginx serving a fixed small body (HTTP/1.1 and h2c). Each proxy forwards
to it over keep-alive connections, configured as its maintainers recommend:
  - nginx:   upstream { keepalive } + proxy_http_version 1.1 + Connection ""
  - HAProxy: mode http + http-reuse always, nbthread 1
  - weft:    weft-proxy --threads 1 with its full default chain (protocol-detect, route, metrics, tap)
  - weft-bare: the same without the observability filters (protocol-detect, route): what metrics
             and an idle tap cost
  - weft+tap: weft with a `weft tap` attached that matches everything (max-rps unbounded) and
             reads as fast as it can: what tapping every request costs
  - weft+stuck-tap: the same tapper stopped (SIGSTOP): a tapper that stops reading must not cost
             more than one that reads
Loads: wrk (HTTP/1.1 keep-alive) open-loop for throughput and paced for latency; h2load (HTTP/2,
many streams) open for throughput and with --rps for latency. Prints one table with ratios against
nginx and HAProxy from this same run, and writes it as JSON.
"""
import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

BODY = "x" * 64
CORE_PROXY, CORE_LOAD = "0", "1"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Process:
    def __init__(self, name, argv, pin=None, cwd=None):
        self.name = name
        command = (["taskset", "-c", pin] if pin else []) + argv
        self.popen = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      preexec_fn=raise_fd_limit)

    def pids(self):
        """The process and its children (nginx workers)."""
        pids = [self.popen.pid]
        try:
            children = subprocess.run(["pgrep", "-P", str(self.popen.pid)], capture_output=True, text=True).stdout.split()
            pids += [int(pid) for pid in children]
        except OSError:
            pass
        return pids

    def cpu_split(self):
        """User and kernel CPU seconds of the process and its children."""
        user = system = 0.0
        for pid in self.pids():
            try:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                user += int(fields[11]) / os.sysconf("SC_CLK_TCK")
                system += int(fields[12]) / os.sysconf("SC_CLK_TCK")
            except OSError:
                pass
        return user, system

    def cpu_seconds(self):
        return sum(self.cpu_split())

    def rss_kib(self, key="VmRSS"):
        total = 0
        for pid in self.pids():
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_upstream(workdir):
    h1, h2 = free_port(), free_port()
    config = f"""
daemon off; worker_processes 1; pid {workdir}/upstream.pid; error_log /dev/null crit;
events {{ worker_connections 20000; }}
http {{
  access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  server {{ listen 127.0.0.1:{h1}; listen 127.0.0.1:{h2} http2; location / {{ return 200 "{BODY}"; }} }}
}}"""
    path = f"{workdir}/upstream.conf"
    open(path, "w").write(config)
    process = Process("upstream", ["nginx", "-c", path, "-p", workdir], pin=CORE_LOAD)
    wait_for_port(h1)
    return process, h1, h2


def start_nginx_proxy(workdir, upstream_h1):
    h1, h2 = free_port(), free_port()
    config = f"""
daemon off; worker_processes 1; pid {workdir}/proxy.pid; error_log /dev/null crit;
events {{ worker_connections 20000; }}
http {{
  access_log off; keepalive_requests 10000000; keepalive_timeout 300s; http2_max_requests 10000000;
  upstream app {{ server 127.0.0.1:{upstream_h1}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{h1}; listen 127.0.0.1:{h2} http2;
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}"""
    path = f"{workdir}/nginx-proxy.conf"
    open(path, "w").write(config)
    process = Process("nginx", ["nginx", "-c", path, "-p", workdir], pin=CORE_PROXY)
    wait_for_port(h1)
    return process, h1, h2


def start_haproxy(workdir, upstream_h1):
    h1, h2 = free_port(), free_port()
    config = f"""
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  http-reuse always
frontend front
  bind 127.0.0.1:{h1}
  bind 127.0.0.1:{h2} proto h2
  default_backend app
backend app
  server app1 127.0.0.1:{upstream_h1}
"""
    path = f"{workdir}/haproxy.cfg"
    open(path, "w").write(config)
    process = Process("haproxy", ["haproxy", "-f", path], pin=CORE_PROXY)
    wait_for_port(h1)
    return process, h1, h2


def start_weft(workdir, binary, upstream, filters=None):
    """weft-proxy in front of `upstream`; `filters` replaces the default inbound chain."""
    port, admin, outbound, tap = free_port(), free_port(), free_port(), free_port()
    path = f"{workdir}/weft-{upstream}-{port}.yaml"
    chain = f", filters: [{', '.join('{ name: %s }' % name for name in filters)}]" if filters else ""
    open(path, "w").write(f"""
admin: {{ address: 127.0.0.1:{admin} }}
tap: {{ address: 127.0.0.1:{tap} }}
inbound: {{ address: 127.0.0.1:{port}, app: 127.0.0.1:{upstream}{chain} }}
outbound: {{ address: 127.0.0.1:{outbound} }}
""")
    process = Process("weft", [binary, "--config", path, "--threads", "1", "--no-watch", "--log-level", "warning"], pin=CORE_PROXY)
    wait_for_port(port)
    wait_for_port(tap)
    process.tap_port = tap
    return process, port


def start_tapper(cli, tap_port, stuck):
    """`weft tap` matching everything; a stuck one is stopped and reads nothing while the load runs."""
    tapper = subprocess.Popen(["taskset", "-c", str(CORE_LOAD), cli, "tap", "--proxy", f"127.0.0.1:{tap_port}", "--max-rps", "1000000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    if stuck:
        os.kill(tapper.pid, signal.SIGSTOP)
    return tapper


def stop_tapper(tapper):
    os.kill(tapper.pid, signal.SIGCONT)
    tapper.kill()
    tapper.wait()


WRK_PERCENTILES = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d p50=%.0f p99=%.0f p999=%.0f\\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


def run_wrk(port, connections, duration, paced_rps=None):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua = WRK_PERCENTILES
    if paced_rps:
        # Each connection waits between requests: connections × 1000/delay requests per second.
        delay_ms = max(1, int(connections * 1000 / paced_rps))
        lua += f"\ndelay = function() return {delay_ms} end\n"
    script.write(lua)
    script.close()
    done = subprocess.run(["taskset", "-c", CORE_LOAD, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", script.name,
                           f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
    out = done.stdout + done.stderr
    os.unlink(script.name)
    match = re.search(r"RESULT requests=(\d+) duration_us=(\d+) errors=(\d+) p50=(\d+) p99=(\d+) p999=(\d+)", out)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, duration_us, errors, p50, p99, p999 = map(int, match.groups())
    return {"rps": requests / (duration_us / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "p999_ms": p999 / 1000,
            "errors": errors, "requests": requests}


def run_h2load(port, clients, streams, duration, rps=None):
    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False)
    log.close()
    argv = ["taskset", "-c", CORE_LOAD, "h2load", "-c", str(clients), "-m", str(streams), "-D", str(duration),
            "--log-file", log.name, f"http://127.0.0.1:{port}/"]
    if rps:
        argv[4:4] = ["--rps", str(max(1, rps // clients))]
    done_process = subprocess.run(argv, capture_output=True, text=True)
    out = done_process.stdout + done_process.stderr
    match = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    elapsed = re.search(r"finished in ([\d.]+)s", out)
    latencies = []
    for line in open(log.name):
        parts = line.split()
        if len(parts) >= 3 and parts[1].startswith("2"):
            latencies.append(int(parts[2]))
    os.unlink(log.name)
    if not match or not elapsed or not latencies:
        raise RuntimeError(f"h2load on port {port} printed no result:\n" + "\n".join(
            line for line in out.splitlines() if line.startswith(("requests", "status", "finished", "error", "fail")) or "rror" in line))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000
    done, succeeded = int(match.group(2)), int(match.group(3))
    return {"rps": succeeded / float(elapsed.group(1)), "p50_ms": pick(0.50), "p99_ms": pick(0.99), "p999_ms": pick(0.999),
            "errors": done - succeeded, "requests": done}


def background_cpu(seconds=2.0):
    """CPU the machine spends before the run starts, in % of one core, and the busiest processes:
    anything else running (a forgotten demo, a build) skews every row, the ratios too."""
    def ticks():
        fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(fields) - fields[3] - fields[4], sum(fields)   # busy (all but idle and iowait), total

    def per_process():
        usage = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                head, tail = open(f"/proc/{pid}/stat").read().rsplit(")", 1)
                fields = tail.split()
                usage[int(pid)] = (head.split("(", 1)[1], int(fields[11]) + int(fields[12]))
            except (OSError, IndexError, ValueError):
                pass
        return usage

    busy_before, total_before = ticks()
    processes_before = per_process()
    time.sleep(seconds)
    busy_after, total_after = ticks()
    processes_after = per_process()
    cores = os.cpu_count() or 1
    percent = 100 * cores * (busy_after - busy_before) / max(1, total_after - total_before)
    hz = os.sysconf("SC_CLK_TCK")
    busiest = sorted(((after - processes_before[pid][1], name) for pid, (name, after) in processes_after.items()
                      if pid in processes_before and pid != os.getpid()), reverse=True)[:3]
    return percent, [f"{name} {100 * used / hz / seconds:.0f}%" for used, name in busiest if used > 0]


def links_swift_runtime_dynamically(binary):
    """Whether `binary` loads libswiftCore.so: then it was not built by scripts/build-release.sh
    (`swift package benchmark` in Benchmarks/ rebuilds nio-floor that way, for one), and every call
    into the runtime, retain and release above all, goes through the PLT: not the build measured."""
    linked = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return "libswiftCore.so" in linked


def evict_from_page_cache(binary):
    """Drops the binary's pages from the page cache, so idle RSS is measured from the same state
    every run. The kernel maps code and read-only data in blocks around each page touched, and
    what it maps depends on how the file's pages entered the cache (written by the linker, read by
    earlier runs): one binary measured 21.8 MB before its pages were evicted, 19.4-19.9 after."""
    fd = os.open(binary, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def idle_rss_kib(workdir, binary, upstream):
    """Resident memory of a freshly started weft-proxy that has served nothing."""
    process, _ = start_weft(workdir, binary, upstream)
    try:
        time.sleep(1)
        return process.rss_kib()
    finally:
        process.stop()


def check_alive(processes):
    for process in processes:
        if process.popen.poll() is not None:
            log = process.popen.stderr.read().decode(errors="replace")
            open(f"/tmp/weft-bench-{process.name}-crash.log", "w").write(log)
            fatal = next((line for line in log.splitlines() if "Fatal" in line or "Precondition" in line), log[-500:])
            raise RuntimeError(f"{process.name} exited ({process.popen.returncode}): {fatal}")


def measure(target, process, load):
    before = process.cpu_split() if process else (0, 0)
    started = time.time()
    result = load()
    elapsed = time.time() - started
    if process:
        user, system = (after - earlier for after, earlier in zip(process.cpu_split(), before))
        requests = max(1, result["requests"])
        result["proxy_cpu_percent"] = 100 * (user + system) / elapsed
        result["proxy_cpu_us_per_request"] = 1e6 * (user + system) / requests
        result["proxy_user_us_per_request"] = 1e6 * user / requests
        result["proxy_kernel_us_per_request"] = 1e6 * system / requests
        result["proxy_peak_rss_mb"] = process.rss_kib("VmHWM") / 1024
    result["target"] = target
    return result


def idle_connections_rss(process, port, count):
    sockets = []
    try:
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            sockets.append(connection)
        for connection in sockets:
            connection.recv(4096)
        time.sleep(1)
        return process.rss_kib() / 1024
    finally:
        for connection in sockets:
            connection.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weft", required=True)
    parser.add_argument("--weft-cli", required=True, help="the weft CLI (for the stuck-tapper run)")
    parser.add_argument("--nio-floor", help="Benchmarks' nio-floor binary: the cheapest proxies SwiftNIO allows "
                        "(HTTP/1.1; HTTP/2 with stream channels; HTTP/2 relayed frame by frame)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--paced-rps", type=int, default=2000)
    parser.add_argument("--idle-connections", type=int, default=10000)
    parser.add_argument("--output", default="Benchmarks/results/latest.json")
    args = parser.parse_args()
    for binary in [args.weft, args.nio_floor]:
        if binary and links_swift_runtime_dynamically(binary):
            sys.exit(f"{binary} links the Swift runtime dynamically: build it with scripts/build-release.sh "
                     "(Benchmarks/run.sh does) so that every row is built the same way")
    raise_fd_limit()
    idle_cpu, busiest = background_cpu()
    if idle_cpu > 10:
        print(f"warning: the machine is not idle: {idle_cpu:.0f}% of a core busy before the run ({', '.join(busiest)}); "
              "every row will be skewed", file=sys.stderr)

    workdir = tempfile.mkdtemp(prefix="weft-bench-")
    processes = []
    try:
        upstream, up_h1, up_h2 = start_upstream(workdir)
        processes.append(upstream)
        nginx, nginx_h1, nginx_h2 = start_nginx_proxy(workdir, up_h1)
        haproxy, haproxy_h1, haproxy_h2 = start_haproxy(workdir, up_h1)
        weft_h1, weft_h1_port = start_weft(workdir, args.weft, up_h1)
        weft_h2, weft_h2_port = start_weft(workdir, args.weft, up_h2)
        weft_bare, weft_bare_port = start_weft(workdir, args.weft, up_h1, filters=["protocol-detect", "route"])
        weft_bare.name = "weft-bare"
        processes += [nginx, haproxy, weft_h1, weft_h2, weft_bare]
        floor, floor_h2 = [], []
        if args.nio_floor:
            floor_port, floor_h2_port = free_port(), free_port()
            floor_process = Process("nio-floor", [args.nio_floor, str(floor_port), str(up_h1)], pin=CORE_PROXY)
            floor_h2_process = Process("nio-floor", [args.nio_floor, "--http2", str(floor_h2_port), str(up_h2)], pin=CORE_PROXY)
            frames_port = free_port()
            frames_process = Process("nio-floor", [args.nio_floor, "--http2-frames", str(frames_port), str(up_h2)], pin=CORE_PROXY)
            wait_for_port(floor_port)
            wait_for_port(floor_h2_port)
            wait_for_port(frames_port)
            processes += [floor_process, floor_h2_process, frames_process]
            floor = [("nio-floor", floor_process, floor_port)]
            floor_h2 = [("nio-floor", floor_h2_process, floor_h2_port), ("nio-frames", frames_process, frames_port)]
        time.sleep(0.5)
        # RSS counts the pages of its binary and shared libraries each process touched; private
        # memory is its own. Idle RSS moves from start to start by a few hundred KB, so it is the
        # median over five fresh idle proxies, started with the binary's pages out of the cache.
        evict_from_page_cache(args.weft)
        idle_samples = sorted(idle_rss_kib(workdir, args.weft, up_h1) / 1024 for _ in range(5))
        memory = {"weft_idle_rss_mb": statistics.median(idle_samples),
                  "weft_idle_rss_min_mb": idle_samples[0], "weft_idle_rss_max_mb": idle_samples[-1],
                  "weft_idle_private_mb": weft_h1.rss_kib("RssAnon") / 1024}

        d, c = args.duration, args.connections
        targets_h1 = [("direct", None, up_h1), ("weft", weft_h1, weft_h1_port), ("weft-bare", weft_bare, weft_bare_port),
                      *floor, ("nginx", nginx, nginx_h1), ("haproxy", haproxy, haproxy_h1)]
        targets_h2 = [("direct", None, up_h2), ("weft", weft_h2, weft_h2_port), *floor_h2, ("nginx", nginx, nginx_h2),
                      ("haproxy", haproxy, haproxy_h2)]
        rows = []
        for name, process, port in targets_h1:  # warm up every path once
            run_wrk(port, c, 1)
        for name, process, port in targets_h1:
            rows.append({"load": "http1 open (wrk)", **measure(name, process, lambda: run_wrk(port, c, d))})
        check_alive(processes)
        for name, process, port in targets_h1:
            rows.append({"load": f"http1 paced {args.paced_rps}/s (wrk)", **measure(name, process, lambda: run_wrk(port, c, d, args.paced_rps))})
        for label, stuck in (("weft+tap", False), ("weft+stuck-tap", True)):
            tapper = start_tapper(args.weft_cli, weft_h1.tap_port, stuck)
            try:
                rows.append({"load": f"http1 paced {args.paced_rps}/s (wrk)",
                             **measure(label, weft_h1, lambda: run_wrk(weft_h1_port, c, d, args.paced_rps))})
                rows.append({"load": "http1 open (wrk)", **measure(label, weft_h1, lambda: run_wrk(weft_h1_port, c, d))})
            finally:
                stop_tapper(tapper)
        for name, process, port in targets_h2:
            rows.append({"load": "http2 open (h2load -c4 -m25)", **measure(name, process, lambda: run_h2load(port, 4, 25, d))})
        for name, process, port in targets_h2:
            rows.append({"load": f"http2 paced {args.paced_rps}/s (h2load)", **measure(name, process, lambda: run_h2load(port, 4, 25, d, args.paced_rps))})
        memory["weft_rss_under_load_mb"] = max(weft_h1.rss_kib("VmHWM"), weft_h2.rss_kib("VmHWM")) / 1024
        memory[f"weft_rss_{args.idle_connections}_idle_connections_mb"] = idle_connections_rss(weft_h1, weft_h1_port, args.idle_connections)

        for row in rows:
            peers = {r["target"]: r for r in rows if r["load"] == row["load"]}
            for reference in ("nginx", "haproxy"):
                if row["target"] != "direct" and reference in peers and peers[reference]["rps"] > 0:
                    row[f"rps_vs_{reference}"] = row["rps"] / peers[reference]["rps"]
            if "direct" in peers:
                row["added_p99_ms"] = row["p99_ms"] - peers["direct"]["p99_ms"]

        print(f"\n{'load':34} {'target':9} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p99.9':>7} {'+p99':>6} {'cpu%':>5} {'µs/req':>6} "
              f"{'user':>5} {'kernel':>6} {'RSS MB':>7} {'×nginx':>7} {'×haproxy':>8} {'err':>4}")
        for row in rows:
            fmt = lambda key, spec: format(row[key], spec) if key in row else "-"
            print(f"{row['load']:34} {row['target']:9} {row['rps']:9.0f} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f} {row['p999_ms']:7.2f} "
                  f"{fmt('added_p99_ms', '6.2f'):>6} {fmt('proxy_cpu_percent', '5.0f'):>5} {fmt('proxy_cpu_us_per_request', '6.1f'):>6} "
                  f"{fmt('proxy_user_us_per_request', '5.1f'):>5} {fmt('proxy_kernel_us_per_request', '6.1f'):>6} "
                  f"{fmt('proxy_peak_rss_mb', '7.1f'):>7} {fmt('rps_vs_nginx', '7.2f'):>7} {fmt('rps_vs_haproxy', '8.2f'):>8} {row['errors']:4d}")
        print("\nmemory:", ", ".join(f"{k}={v:.1f}" for k, v in memory.items()))
        report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": {"cores": os.cpu_count(),
                  "cpu": platform.processor() or platform.machine(), "kernel": platform.release()},
                  "duration_s": d, "connections": c, "background_cpu_percent": round(idle_cpu, 1), "rows": rows, "memory": memory}
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        json.dump(report, open(args.output, "w"), indent=2)
        print(f"wrote {args.output}")
    finally:
        for process in processes:
            process.stop()


if __name__ == "__main__":
    main()
