#!/usr/bin/env python3
"""Steady traffic for Weft's example mesh: calls http://TARGET/ at --rps through $HTTP_PROXY
(its sidecar, under `weft up`). Also answers GET / on $PORT, so `weft up` sees it is ready."""
import argparse
import http.server
import os
import threading
import time
import urllib.error
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--target", default="web")
parser.add_argument("--rps", type=float, default=5)
args = parser.parse_args()
opener = urllib.request.build_opener(urllib.request.ProxyHandler())


def drive():
    n = 0
    while True:
        n += 1
        try:
            with opener.open(f"http://{args.target}/?load={n}", timeout=5) as response:
                response.read()
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1 / args.rps)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format, *values):
        pass


threading.Thread(target=drive, daemon=True).start()
print(f"calling http://{args.target}/ at {args.rps} requests/s", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Health).serve_forever()
