#!/usr/bin/env python3
"""A small HTTP service for Weft's example mesh (config/mesh.yaml), standard library only.

It knows nothing about Weft: it listens on $PORT, and calls other services by name
(http://SERVICE/path) through $HTTP_PROXY, which `weft up` points at its sidecar proxy.

  --calls SERVICE:PATH[,SERVICE:PATH…]  on each request, call these in order (numbered: ?n=1, 2, …);
                                        answer 502 if any failed
  --fail-path PREFIX --fail-every N     answer 500 to a request on PREFIX whose n is a multiple of N,
                                        so exactly 1 in N of a caller's calls fail, however many replicas
"""
import argparse
import http.server
import os
import threading
import urllib.error
import urllib.parse
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--name", default=os.environ.get("WEFT_SERVICE", "service"))
parser.add_argument("--calls", default="")
parser.add_argument("--fail-path", default=None)
parser.add_argument("--fail-every", type=int, default=0)
args = parser.parse_args()

calls = [tuple(item.split(":", 1)) for item in args.calls.split(",") if item]
lock = threading.Lock()
counter = {"calls": 0}
# Through the proxy named by $HTTP_PROXY (urllib reads it), never to a cached connection elsewhere.
opener = urllib.request.build_opener(urllib.request.ProxyHandler())


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if args.fail_path and self.path.startswith(args.fail_path) and args.fail_every > 0:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            n = int(query.get("n", ["1"])[0])
            if n % args.fail_every == 0:
                return self.answer(500, f"{args.name}: failing call {n} on {args.fail_path} (every {args.fail_every}th)\n")
        with lock:
            counter["calls"] += 1
            n = counter["calls"]
        failed = []
        for service, path in calls:
            try:
                with opener.open(f"http://{service}{path}?n={n}", timeout=5) as response:
                    response.read()
            except urllib.error.HTTPError as error:
                failed.append(f"{service}{path}: {error.code}")
            except OSError as error:
                failed.append(f"{service}{path}: {error}")
        if failed:
            return self.answer(502, f"{args.name}: {'; '.join(failed)}\n")
        self.answer(200, f"{args.name}: ok\n")

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *values):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = True
server.request_queue_size = 256
print(f"{args.name} listening on 127.0.0.1:{os.environ['PORT']}, calls {calls or 'nothing'}", flush=True)
server.serve_forever()
