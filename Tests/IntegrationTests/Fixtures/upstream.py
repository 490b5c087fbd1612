#!/usr/bin/env python3
"""A plain HTTP/1.1 upstream for Weft's integration tests, built on Python's http.server.

  upstream.py [PORT] [--delay-ms N]   (N: extra latency added to every answer)

Prints "PORT <n>" once listening. Endpoints:
  GET  /echo[/...], /users/...  JSON: method, path, headers, body length
  GET  /connections     how many TCP connections this server accepted, and how many are open
  GET  /download?bytes=N[&chunked=1]   N bytes of 'x' (content-length, or chunked with a trailer)
  POST|PUT /upload      reads the body (content-length or chunked); JSON: bytes, sha256
  GET  /slow?ms=N       answers after N ms
  GET  /hang            never answers (until the client goes away)
  GET  /status/N        answers status N
  GET  /flaky?p=F       answers 503 with probability F, else 200; counted
  POST|PUT /flaky-upload?p=F   reads the body, records its sha256, then as /flaky
  GET  /flaky-stats     JSON: requests to the flaky endpoints so far, sha256 of each upload
"""
import hashlib
import json
import random
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

connections = 0
open_connections = 0
delay_ms = 0
flaky_requests = 0
uploads = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in one write: with two small writes, Nagle plus the peer's delayed
    # ACK would stall every keep-alive response by 40 ms.
    wbufsize = 65536

    def setup(self):
        global connections, open_connections
        with lock:
            connections += 1
            open_connections += 1
        super().setup()

    def finish(self):
        global open_connections
        try:
            super().finish()
        finally:
            with lock:
                open_connections -= 1

    def log_message(self, *args):
        pass

    def handle_expect_100(self):
        answer = super().handle_expect_100()
        self.wfile.flush()   # the 100 must leave now, not with the final response
        return answer

    def send_json(self, status, payload):
        if delay_ms:
            time.sleep(delay_ms / 1000)
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def answer_flaky(self, query):
        global flaky_requests
        with lock:
            flaky_requests += 1
        if random.random() < float(query.get("p", ["0"])[0]):
            self.send_json(503, {"flaky": "failed"})
        else:
            self.send_json(200, {"flaky": "ok"})

    def read_body(self):
        digest = hashlib.sha256()
        total = 0
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                remaining = size
                while remaining:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    digest.update(chunk)
                    total += len(chunk)
                    remaining -= len(chunk)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("content-length", "0"))
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                digest.update(chunk)
                total += len(chunk)
                remaining -= len(chunk)
        return total, digest.hexdigest()

    def do_GET(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/echo" or url.path.startswith("/echo/") or url.path.startswith("/users/"):
            length, _ = self.read_body()
            self.send_json(200, {"method": self.command, "path": self.path,
                                 "headers": {k.lower(): v for k, v in self.headers.items()}, "body": length})
        elif url.path == "/connections":
            self.send_json(200, {"connections": connections, "open": open_connections})
        elif url.path == "/download":
            size = int(query.get("bytes", ["0"])[0])
            block = b"x" * (1 << 16)
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            if query.get("chunked"):
                self.send_header("transfer-encoding", "chunked")
                self.send_header("trailer", "x-checksum")
                self.end_headers()
                if self.command == "HEAD":
                    return
                sent = 0
                while sent < size:
                    part = block[: min(len(block), size - sent)]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    sent += len(part)
                self.wfile.write(b"0\r\nx-checksum: done\r\n\r\n")
            else:
                self.send_header("content-length", str(size))
                self.end_headers()
                if self.command == "HEAD":
                    return
                sent = 0
                while sent < size:
                    part = block[: min(len(block), size - sent)]
                    self.wfile.write(part)
                    sent += len(part)
        elif url.path == "/slow":
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
            self.send_json(200, {"slept_ms": int(query.get("ms", ["1000"])[0])})
        elif url.path == "/hang":
            try:
                while self.rfile.read(1):
                    pass
            except OSError:
                pass
            self.close_connection = True
        elif url.path == "/flaky":
            self.answer_flaky(query)
        elif url.path == "/flaky-stats":
            with lock:
                self.send_json(200, {"requests": flaky_requests, "uploads": list(uploads)})
        elif url.path.startswith("/status/"):
            status = int(url.path.split("/")[2])
            self.send_json(status, {"status": status})
        else:
            self.send_json(404, {"error": "no such path", "path": self.path})

    do_HEAD = do_GET
    do_DELETE = do_GET

    def do_POST(self):
        url = urlparse(self.path)
        if url.path == "/upload":
            length, sha = self.read_body()
            self.send_json(200, {"bytes": length, "sha256": sha})
        elif url.path == "/flaky-upload":
            length, sha = self.read_body()
            with lock:
                uploads.append(sha)
            self.answer_flaky(parse_qs(url.query))
        else:
            self.do_GET()

    do_PUT = do_POST


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 refuses connections under load (the proxy opens new
    # upstream connections whenever a retried or failed one is closed).
    request_queue_size = 1024


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--delay-ms" in arguments:
        at = arguments.index("--delay-ms")
        delay_ms = int(arguments[at + 1])
        del arguments[at:at + 2]
    server = Server(("127.0.0.1", int(arguments[0]) if arguments else 0), Handler)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()
