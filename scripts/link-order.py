#!/usr/bin/env python3
"""Writes how release builds lay out weft-proxy's code: the code an idle proxy runs first and
packed (scripts/weft-proxy-idle.lds), then the functions a working proxy runs, hottest first
(scripts/weft-proxy.order).

  scripts/link-order.py [--proxy .build-release/release/weft-proxy] [--link-map .build-release/link-maps/weft-proxy.map]
                        [--cli .build-release/release/weft]

scripts/build-release.sh hands both to lld: the linker script (`-T`, an INSERT script that keeps the
default layout) places the idle proxy's input sections at the start of .text, in that order; the
symbol ordering file (`--symbol-ordering-file`) orders the rest. The kernel maps code 64 KB at a
time around each page a process touches (fault-around), so code run at start-up but spread over the
30 MB text section keeps megabytes resident: the 4.0 MB an idle proxy runs sat in 9.5 MB of
resident code before the linker script (the ordering file alone cannot place functions without a
symbol, LLVM's private ones such as `.Lobjectdestroy`, nor pick one of several local functions
sharing a name; the linker script names input sections, so it places those too).

Three runs of a release weft-proxy under valgrind's callgrind, recording the address of every
instruction run (debug info stripped first: valgrind cannot read lld's DWARF 5). Two start the
proxy and let it idle as a sidecar does, answering its platform's probes (the admin endpoints'
/ready, /live and /metrics, a client connecting to each listener): once as configured by default
(watching its config file), once as `weft up` and the benchmarks start it (`--threads 1 --no-watch`).
The third does what a working sidecar does: serve HTTP/1.1 inbound to a Python upstream and HTTP/2 to
nghttpd, HTTP/1.1 and HTTP/2 outbound through PCRE2 routes, a plugin filter and retries (to nghttpd
for HTTP/2), answer the admin endpoints, stream to `weft tap`, reload its config. Counting stops
before SIGTERM, so shutdown code is in none of them.

The addresses are mapped to input sections with the link map build-release.sh writes
(`.build-release/link-maps/weft-proxy.map`), and to functions with the binary's symbol table. The
idle script lists the sections the idle runs ran, by the working run's instruction count (then the
idle runs'), so the request path's share of them is packed too; the ordering file the
functions the working run ran, by their own instruction count, leaving out names several objects
define locally (merged helpers such as `objectdestroyTm`; ordering one drags every copy along).
Stale files are harmless: the linker skips sections and names it no longer has.
Needs valgrind, curl, h2load and nghttpd (Debian: valgrind, nghttp2-client, nghttp2-server).
"""
import argparse
import bisect
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


def idle_probes(ports):
    """What an idle sidecar sees: its platform's probes and scrape, a client connecting to each listener."""
    for port in [ports["inbound"], ports["outbound"], ports["tap"]]:
        wait_for_port(port, timeout=120)
    admin = f"http://127.0.0.1:{ports['admin']}"
    for path in ["/ready", "/live", "/metrics"]:
        quiet(["curl", "-s", f"{admin}{path}"])
    time.sleep(3)


def instruction_costs(callgrind_out, binary):
    """Instructions run at each address of `binary` (callgrind --dump-instr=yes --compress-pos=no).

    A cost line is `0xADDRESS [LINE] COUNT`; the line after `calls=` is the cost of a call, counted where
    the callee ran, so it is skipped. Addresses are as loaded: valgrind maps a PIE at its own base,
    found from the entry of `weft_proxy_main`, which every run runs once.
    """
    names, costs, main_entry = {}, collections.Counter(), None
    in_binary, function, after_call = False, None, False

    def name(kind, spec):
        """`(id) name` defines a compressed name, `(id)` refers to one (callgrind's string compression)."""
        m = re.match(r"(?:\((\d+)\))?\s*(.*)", spec)
        key = (kind, m.group(1) or m.group(2))
        if m.group(2):
            names[key] = m.group(2)
        return names.get(key)

    positions = 1   # `positions: instr line` puts a line number before the counts
    for line in open(callgrind_out, errors="replace"):
        if line.startswith("positions:"):
            positions = len(line.split()) - 1
        elif line.startswith("ob="):
            in_binary = os.path.basename(name("ob", line[3:].rstrip("\n")) or "") == os.path.basename(binary)
        elif line.startswith("fn="):
            function = name("fn", line[3:].rstrip("\n"))
        elif line.startswith("cob="):
            name("ob", line[4:].rstrip("\n"))
        elif line.startswith("cfn="):
            name("fn", line[4:].rstrip("\n"))
        elif line.startswith("calls="):
            after_call = True
        elif line.startswith("0x"):
            if after_call:
                after_call = False
                continue
            if in_binary:
                parts = line.split()
                address = int(parts[0], 16)
                costs[address] += int(parts[positions]) if len(parts) > positions else 0
                if function == "weft_proxy_main":
                    main_entry = address if main_entry is None else min(main_entry, address)
    return costs, main_entry


def functions(binary):
    """(start, size, name) of every function in the binary's symbol table, by address."""
    result = []
    for line in subprocess.run(["nm", "-n", "-S", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTWw":
            result.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return result


def text_section(binary):
    """(address, size) of the binary's .text."""
    for line in subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True).stdout.splitlines():
        m = re.search(r"\]\s+\.text\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            return int(m.group(1), 16), int(m.group(2), 16)
    return None


def text_input_sections(link_map):
    """(start, size, file, section) of every input section lld placed in .text, from its `-Map`
    output, and the (address, size) of .text itself.

    Columns: VMA, LMA, size, alignment, then the output section, an input section (`file:(name)`,
    eight spaces further in) or a symbol (sixteen): the name's indentation says which.
    """
    result, output, text = [], None, None
    with open(link_map, errors="replace") as f:
        for line in f:
            head = line[:49].split()
            if len(head) != 4 or not re.fullmatch(r"[0-9a-f]+", head[0]):
                continue
            name = line[49:].rstrip("\n")
            if not name.startswith(" "):
                output = name
                if output == ".text":
                    text = (int(head[0], 16), int(head[2], 16))
            elif output == ".text" and name.startswith(" " * 8) and not name.startswith(" " * 9):
                m = re.fullmatch(r"(.*):\((.*)\)", name.strip())
                if m:
                    result.append((int(head[0], 16), int(head[2], 16), m.group(1), m.group(2)))
    return sorted(result), text


def section_pattern(file, section):
    """A linker-script input section description for one input section, independent of where the
    checkout and the toolchain live; None when the name holds characters a pattern cannot."""
    archive = re.fullmatch(r"(.*\.a)\((.*)\)", file)
    if archive:
        where = f"*/{os.path.basename(archive.group(1))}:{archive.group(2)}"
    elif file.startswith("<"):
        return None   # the linker's own (synthetic) sections
    else:
        built = re.search(r"/([^/]+\.build/.*)$", file)
        where = f"*/{built.group(1) if built else os.path.basename(file)}"
    # A script splits words at blanks and takes a quoted name literally (no `*`), so a blank in a
    # file or section name (`OrderedSet+Partial SetAlgebra+Basics.swift.o`, `.Lget_witness_table …`)
    # is matched by `?`, any one character.
    where, section = where.replace(" ", "?"), section.replace(" ", "?")
    if not re.fullmatch(r"[A-Za-z0-9_.$/*?:+-]+", where + section):
        return None
    return f"{where}({section})"


def locate(costs, spans):
    """Sums instruction counts per span ((start, size, ...) sorted by start) that holds them."""
    starts = [span[0] for span in spans]
    totals = collections.Counter()
    for address, cost in costs.items():
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < spans[i][0] + max(spans[i][1], 1):
            totals[i] += cost
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--proxy", default=os.path.join(ROOT, ".build-release/release/weft-proxy"))
    parser.add_argument("--cli", default=os.path.join(ROOT, ".build-release/release/weft"))
    parser.add_argument("--order", default=os.path.join(ROOT, "scripts/weft-proxy.order"))
    parser.add_argument("--link-map", default=os.path.join(ROOT, ".build-release/link-maps/weft-proxy.map"),
                        help="lld's map of --proxy, which build-release.sh writes")
    parser.add_argument("--idle-script", default=os.path.join(ROOT, "scripts/weft-proxy-idle.lds"))
    args = parser.parse_args()
    if not os.path.exists(args.link_map):
        sys.exit(f"link-order: no {args.link_map}; link with scripts/build-release.sh, which writes it")
    work = tempfile.mkdtemp(prefix="weft-link-order-")
    try:
        write_layout(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_layout(args, work):
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

    symbols = functions(stripped)
    main_entry = next(start for start, _, name in symbols if name == "weft_proxy_main")

    def profiled(name, arguments, work_to_do):
        """Instructions run per address of the binary's file layout while `work_to_do` ran."""
        profile = os.path.join(work, f"{name}.callgrind")
        proxy = subprocess.Popen(["valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=yes",
                                  "--compress-pos=no", f"--callgrind-out-file={profile}", stripped,
                                  "--config", config_path, *arguments, "--log-level", "warning"],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{name}.log"), "w"))
        try:
            wait_for_port(ports["inbound"], timeout=120)   # valgrind starts it ~50x slower
            wait_for_port(ports["tap"], timeout=120)
            work_to_do()
            quiet(["callgrind_control", "--instr=off", str(proxy.pid)])   # shutdown is nobody's hot path
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(timeout=120)
        costs, entry = instruction_costs(profile, stripped)
        if entry is None:
            sys.exit(f"link-order: the {name} run never entered weft_proxy_main (see {name}.log)")
        base = entry - main_entry
        return collections.Counter({address - base: cost for address, cost in costs.items()})

    try:
        idle = profiled("idle", ["--threads", "1"], lambda: idle_probes(ports))
        idle += profiled("idle-no-watch", ["--threads", "1", "--no-watch"], lambda: idle_probes(ports))
        working = profiled("working", ["--threads", "1"], lambda: exercise(ports, args.cli, config_path, config_text))
    finally:
        upstream.terminate()
        nghttpd.terminate()

    link_map = args.link_map
    sections, text = text_input_sections(link_map)
    if text != text_section(stripped):
        sys.exit(f"link-order: {link_map} is not the map of {args.proxy} (their .text differ); relink with scripts/build-release.sh")
    idle_sections = locate(idle, sections)
    if not idle_sections:
        sys.exit(f"link-order: no instruction of the idle runs falls in {link_map}'s .text: is it this binary's map?")
    # Hottest first by what the sidecar spends its life doing: a proxy's request path runs through
    # much of the start-up code (reference counting, the event loop, NIO's pipeline), and packing it
    # by the idle runs' counts instead spread it out (3-4% more instruction-cache misses per request).
    working_sections = locate(working, sections)
    patterns, unplaceable = [], 0
    for i in sorted(idle_sections, key=lambda i: (-working_sections[i], -idle_sections[i])):
        pattern = section_pattern(sections[i][2], sections[i][3])
        if pattern:
            patterns.append(pattern)
        else:
            unplaceable += 1
    idle_bytes = sum(sections[i][1] for i in idle_sections)
    with open(args.idle_script, "w") as f:
        f.write("/* Written by scripts/link-order.py: the input sections an idle weft-proxy runs, placed\n"
                "   first in .text, those a working proxy runs most first. An INSERT script: lld keeps\n"
                "   its default layout. */\n"
                "SECTIONS\n{\n  .text :\n  {\n")
        f.write("".join(f"    {pattern}\n" for pattern in patterns))
        f.write("  }\n}\nINSERT BEFORE .init;\n")

    definitions = collections.Counter(name for _, _, name in symbols)
    ran = locate(working, symbols)
    ordered = [symbols[i][2] for i, _ in ran.most_common() if definitions[symbols[i][2]] == 1]
    with open(args.order, "w") as f:
        f.write("\n".join(ordered) + "\n")
    print(f"link-order: {len(patterns)} input sections ({idle_bytes / 1048576:.1f} MB) run by an idle proxy -> "
          f"{args.idle_script} ({unplaceable} not placeable); {len(ordered)} functions run by a working one -> {args.order}")


if __name__ == "__main__":
    main()
