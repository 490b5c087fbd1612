#!/usr/bin/env python3
"""The control plane, measured: one `weft controller` and N real proxies on this machine.

Reports, in one run: how long until every proxy has ACKed its first snapshot; how long a mesh
file edit (one workload's endpoints) takes to be ACKed by every proxy (p50 and max over several
edits); the controller's RSS and CPU while it scrapes every proxy; the stat API's latency; a
proxy's RSS when fed by the controller. Writes Benchmarks/results/controller-latest.{json,md}.

  Benchmarks/controller.sh [--proxies 20] [--workloads 50] [--edits 10]
"""
import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--weft", required=True, help="the weft CLI binary")
parser.add_argument("--proxy", required=True, help="the weft-proxy binary")
parser.add_argument("--proxies", type=int, default=20)
parser.add_argument("--workloads", type=int, default=50)
parser.add_argument("--edits", type=int, default=10)
parser.add_argument("--scrape-interval", type=float, default=2)
args = parser.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mesh(edit=0):
    lines = ["workloads:"]
    for index in range(args.workloads):
        port = 20000 + index + (edit if index == 0 else 0)
        lines.append(f"  - {{ name: w{index}, namespace: bench, endpoints: [127.0.0.1:{port}] }}")
    return "\n".join(lines) + "\n"


def all_acked(api, count):
    proxies = get(f"{api}/api/v1/proxies")["proxies"]
    ready = [p for p in proxies if p["connected"] and p.get("latestVersion") and p.get("ackedVersion") == p.get("latestVersion")]
    return len(ready) == count, proxies


def wait_acked(api, count, timeout=60):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        ok, _ = all_acked(api, count)
        if ok:
            return time.monotonic() - start
        time.sleep(0.005)
    raise SystemExit(f"proxies not all ACKed after {timeout}s")


directory = tempfile.mkdtemp(prefix="weft-controller-bench-")
mesh_file = os.path.join(directory, "mesh.yaml")
with open(mesh_file, "w") as f:
    f.write(mesh())
push, api_port = free_port(), free_port()
api = f"http://127.0.0.1:{api_port}"
processes = []
try:
    controller = subprocess.Popen([args.weft, "controller", "--mesh", mesh_file, "--push-address", f"127.0.0.1:{push}",
                                   "--api-address", f"127.0.0.1:{api_port}", "--scrape-interval", str(args.scrape_interval),
                                   "--log-level", "warning"], stderr=subprocess.DEVNULL)
    processes.append(controller)
    for _ in range(200):
        try:
            get(f"{api}/api/v1/version")
            break
        except OSError:
            time.sleep(0.05)
    started = time.monotonic()
    for index in range(args.proxies):
        config = os.path.join(directory, f"proxy{index}.yaml")
        with open(config, "w") as f:
            f.write(f"""identity: {{ namespace: bench, workload: deploy/w{index % args.workloads}, instance: p{index} }}
controller: {{ address: 127.0.0.1:{push} }}
admin: {{ address: 127.0.0.1:0 }}
tap: {{ address: 127.0.0.1:0 }}
inbound: {{ address: 127.0.0.1:0, app: 127.0.0.1:{free_port()} }}
outbound: {{ address: 127.0.0.1:0 }}
""")
        processes.append(subprocess.Popen([args.proxy, "--config", config, "--threads", "1", "--log-level", "warning"],
                                          stderr=subprocess.DEVNULL))
    wait_acked(api, args.proxies)
    first_ack = time.monotonic() - started

    propagation = []
    for edit in range(1, args.edits + 1):
        with open(mesh_file + ".tmp", "w") as f:
            f.write(mesh(edit))
        os.replace(mesh_file + ".tmp", mesh_file)
        edited = time.monotonic()
        # The new latest version first shows up, then every proxy ACKs it.
        while True:
            ok, proxies = all_acked(api, args.proxies)
            if not ok:
                break
            time.sleep(0.002)
            if time.monotonic() - edited > 5:
                raise SystemExit("the edit never produced a new version")
        wait_acked(api, args.proxies)
        propagation.append(time.monotonic() - edited)
        time.sleep(0.3)

    time.sleep(2 * args.scrape_interval)
    cpu_before, wall_before = cpu_seconds(controller.pid), time.monotonic()
    time.sleep(10)
    controller_cpu = (cpu_seconds(controller.pid) - cpu_before) / (time.monotonic() - wall_before)
    stat_times = []
    for _ in range(50):
        t = time.monotonic()
        get(f"{api}/api/v1/stat?resource=deploy&namespace=bench")
        stat_times.append(time.monotonic() - t)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "proxies": args.proxies,
        "workloads": args.workloads,
        "scrape_interval_s": args.scrape_interval,
        "all_proxies_acked_first_snapshot_s": round(first_ack, 3),
        "edit_to_all_acked_p50_ms": round(statistics.median(propagation) * 1000, 1),
        "edit_to_all_acked_max_ms": round(max(propagation) * 1000, 1),
        "controller_rss_mib": round(rss_kib(controller.pid) / 1024, 1),
        "controller_cpu_percent_while_scraping": round(controller_cpu * 100, 2),
        "stat_api_p50_ms": round(statistics.median(stat_times) * 1000, 2),
        "proxy_rss_mib_mean": round(statistics.mean(rss_kib(p.pid) for p in processes[1:]) / 1024, 1),
    }
finally:
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
with open(os.path.join(out, "controller-latest.json"), "w") as f:
    json.dump(results, f, indent=2)
rows = "\n".join(f"| {key} | {value} |" for key, value in results.items())
with open(os.path.join(out, "controller-latest.md"), "w") as f:
    f.write(f"# Controller benchmark ({results['date']}, {results['machine']})\n\n"
            f"`Benchmarks/controller.sh --proxies {args.proxies} --workloads {args.workloads} --edits {args.edits}`\n\n"
            f"| measure | value |\n|---|---|\n{rows}\n")
print(json.dumps(results, indent=2))
