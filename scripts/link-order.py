#!/usr/bin/env python3
"""Writes scripts/weft-proxy.order: the functions a working weft-proxy runs, hottest first.

  scripts/link-order.py [--proxy .build-release/release/weft-proxy] [--cli .build-release/release/weft]

scripts/build-release.sh hands the file to the linker (lld --symbol-ordering-file), which lays
those functions out first and together. Without it, the ~1.8 MB of code a proxy runs is spread
over the 30 MB text section, and the kernel maps code 64 KB at a time around each page touched
(fault-around): an idle proxy kept 13.8 MB of code resident for the 1.5 MB it had run.

Two runs of a release weft-proxy under valgrind's callgrind (debug info stripped first: valgrind
cannot read lld's DWARF 5): one starts the proxy and lets it idle; the other does what a sidecar
does: start with file watching on, serve HTTP/1.1 inbound to a Python upstream and HTTP/2 to nghttpd,
HTTP/1.1 and HTTP/2 outbound through PCRE2 routes, a plugin filter and retries (to nghttpd for
HTTP/2), answer the admin endpoints, stream to `weft tap`, reload its config, stop on SIGTERM.
The functions the idle run ran come first (what an idle proxy keeps resident, in as few pages as
possible), then the rest; within each part by their own instruction count, highest first, so hot
code packs into the fewest pages and cache lines.

Left out, because the linker cannot place them one by one: names that several objects define
locally (merged helpers such as `objectdestroyTm`: ordering one drags every copy along, and with
them whole sections of the prebuilt runtime libraries) and LLVM's unnamed functions (no symbol to
name). A stale file is harmless: the linker skips names it no longer has.
Needs valgrind, curl, h2load and nghttpd (Debian: valgrind, nghttp2-client, nghttp2-server).
"""
import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM = os.path.join(ROOT, "Tests/IntegrationTests/Fixtures/upstream.py")
sys.path.insert(0, os.path.join(ROOT, "Benchmarks"))
from compare import free_port, wait_for_port  # noqa: E402  (the benchmarks' port helpers)


def quiet(command, **kwargs):
    return subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, **kwargs)


def proxy_config(ports, upstream, h2_upstream):
    return f"""
admin: {{ address: 127.0.0.1:{ports['admin']} }}
tap: {{ address: 127.0.0.1:{ports['tap']} }}
inbound:
  address: 127.0.0.1:{ports['inbound']}
  app: 127.0.0.1:{upstream}
  filters:                     # the default chain; HTTP/2 requests go to an HTTP/2 app
    - name: protocol-detect
    - name: route
      config: {{ routes: [{{ name: h2-app, match: {{ path: {{ prefix: /h2/ }} }}, backend: h2 }}] }}
    - name: retry
    - name: metrics
    - name: tap
outbound:
  address: 127.0.0.1:{ports['outbound']}
  filters:
    - name: protocol-detect
    - name: route
      config:
        routes:
          - {{ name: user-by-id, match: {{ path: {{ regex: '/users/(?<id>[0-9]+)(/.*)?' }} }}, backend: users, timeout: 2s }}
          - {{ name: static, match: {{ authority: h2, path: {{ prefix: / }} }}, backend: h2 }}
    - name: header-rewrite
      config: {{ routes: [user-by-id], request: {{ set: {{ x-user-id: "${{id}}" }} }} }}
    - name: retry
      config:
        policies: [{{ routes: [user-by-id], maxRetries: 2, on: [gateway-error] }}]
    - name: metrics
    - name: tap
backends:
  - {{ name: users, endpoints: [127.0.0.1:{upstream}] }}
  - {{ name: h2, endpoints: [127.0.0.1:{h2_upstream}] }}
"""


def expect_status(expected, arguments):
    """A profile of requests that failed would order the wrong code: check the paths work."""
    result = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"] + arguments,
                            capture_output=True, text=True, timeout=120)
    if result.stdout != str(expected):
        sys.exit(f"link-order: curl {' '.join(arguments)} answered {result.stdout or 'nothing'}, not {expected}")


def exercise(proxy_ports, cli, config_path, config_text):
    inbound = f"http://127.0.0.1:{proxy_ports['inbound']}"
    outbound = f"http://127.0.0.1:{proxy_ports['outbound']}"
    admin = f"http://127.0.0.1:{proxy_ports['admin']}"
    expect_status(200, [f"{inbound}/echo/a"])
    expect_status(200, ["--http2-prior-knowledge", f"{inbound}/h2/index.html"])
    expect_status(200, ["-H", "Host: users", f"{outbound}/users/42"])
    expect_status(200, ["--http2-prior-knowledge", "-H", "Host: h2", f"{outbound}/"])
    tapper = subprocess.Popen([cli, "tap", "--proxy", f"127.0.0.1:{proxy_ports['tap']}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    for _ in range(3):
        quiet(["curl", "-s", f"{inbound}/echo/a"])
        quiet(["curl", "-s", "-d", "hello", f"{inbound}/upload"])
        quiet(["curl", "-s", f"{inbound}/download?bytes=100000&chunked=1"])
        quiet(["curl", "-s", "--http2-prior-knowledge", f"{inbound}/h2/index.html"])
        quiet(["curl", "-s", "-H", "Host: users", f"{outbound}/users/42"])
        quiet(["curl", "-s", "--http2-prior-knowledge", "-H", "Host: h2", f"{outbound}/"])
        quiet(["curl", "-s", f"{inbound}/status/503"])
    quiet(["h2load", "--h1", "-n", "2000", "-c", "4", f"{inbound}/echo/c"])
    quiet(["h2load", "-n", "2000", "-c", "2", "-m", "10", f"{inbound}/h2/index.html"])
    quiet(["h2load", "-n", "1000", "-c", "2", "-m", "10", "-H", ":authority: h2", f"{outbound}/"])
    for path in ["/metrics", "/ready", "/live", "/config"]:
        quiet(["curl", "-s", f"{admin}{path}"])
    tapper.terminate()
    tapper.wait()
    with open(config_path, "w") as f:
        f.write(config_text.replace("timeout: 2s", "timeout: 3s"))
    time.sleep(2)
    quiet(["curl", "-s", "-H", "Host: users", f"{outbound}/users/7"])
    quiet(["curl", "-s", f"{admin}/metrics"])


def self_costs(callgrind_out):
    """Instructions each function ran itself (callees excluded), by symbol name."""
    names, costs = {}, collections.Counter()
    current, after_calls = None, False
    for line in open(callgrind_out, errors="replace"):
        if line.startswith("fn="):
            m = re.match(r"fn=\((\d+)\)(?: (.*))?", line)
            if m.group(2):
                names[m.group(1)] = m.group(2).strip()
            current = names.get(m.group(1))
        elif line.startswith("cfn="):
            m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line)
            if m.group(2):
                names[m.group(1)] = m.group(2).strip()
        elif line.startswith("calls="):
            after_calls = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_calls:
                after_calls = False
            elif current:
                parts = line.split()
                if len(parts) >= 2:
                    costs[current] += int(parts[1])
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--proxy", default=os.path.join(ROOT, ".build-release/release/weft-proxy"))
    parser.add_argument("--cli", default=os.path.join(ROOT, ".build-release/release/weft"))
    parser.add_argument("--output", default=os.path.join(ROOT, "scripts/weft-proxy.order"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="weft-link-order-")
    try:
        write_order(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_order(args, work):
    stripped = os.path.join(work, "weft-proxy")
    subprocess.run(["objcopy", "--strip-debug", args.proxy, stripped], check=True)

    upstream = subprocess.Popen([sys.executable, UPSTREAM, "0"], stdout=subprocess.PIPE, text=True)
    upstream_port = int(upstream.stdout.readline().split()[1])
    h2_port = free_port()
    os.makedirs(os.path.join(work, "www/h2"))
    for page in ["www/index.html", "www/h2/index.html"]:
        with open(os.path.join(work, page), "w") as f:
            f.write("hello over h2\n")
    nghttpd = subprocess.Popen(["nghttpd", "--no-tls", "-d", os.path.join(work, "www"), str(h2_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ports = {name: free_port() for name in ["admin", "tap", "inbound", "outbound"]}
    config_path = os.path.join(work, "proxy.yaml")
    config_text = proxy_config(ports, upstream_port, h2_port)
    with open(config_path, "w") as f:
        f.write(config_text)

    def profiled(name, work_to_do):
        profile = os.path.join(work, f"{name}.callgrind")
        proxy = subprocess.Popen(["valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=no",
                                  f"--callgrind-out-file={profile}", stripped, "--config", config_path,
                                  "--threads", "1", "--log-level", "warning"],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{name}.log"), "w"))
        try:
            wait_for_port(ports["inbound"], timeout=120)   # valgrind starts it ~50x slower
            wait_for_port(ports["tap"], timeout=120)
            work_to_do()
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(timeout=120)
        return self_costs(profile)

    try:
        idle = profiled("idle", lambda: time.sleep(3))
        working = profiled("working", lambda: exercise(ports, args.cli, config_path, config_text))
    finally:
        upstream.terminate()
        nghttpd.terminate()

    definitions = collections.Counter()
    for line in subprocess.run(["nm", "--defined-only", stripped], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTWw":   # functions: local, global, weak
            definitions[parts[2]] += 1
    first = [name for name, _ in (idle + working).most_common() if name in idle]
    then = [name for name, _ in working.most_common() if name not in idle]
    ordered = [name for name in first + then if definitions[name] == 1]
    with open(args.output, "w") as f:
        f.write("\n".join(ordered) + "\n")
    print(f"link-order: {len(ordered)} functions, {sum(1 for n in first if definitions[n] == 1)} of them run by an idle proxy -> {args.output}")


if __name__ == "__main__":
    main()
