#!/usr/bin/env python3
"""Sends malformed HTTP/2 as raw bytes and prints the frames the peer answers with.

  h2_abuse.py HOST:PORT bad-preface    preface, then PING instead of SETTINGS
  h2_abuse.py HOST:PORT frame-size     a PING frame whose length is 7 (must be 8)
  h2_abuse.py HOST:PORT closed-stream  a request on stream 1, then HEADERS again on stream 1
  h2_abuse.py HOST:PORT idle           preface and SETTINGS, then nothing but PING acks
  h2_abuse.py HOST:PORT idle-no-ack    preface and SETTINGS, then nothing at all (PINGs unanswered)
  h2_abuse.py HOST:PORT stalled-reader PATH
                                       GET PATH, then reads everything and never returns
                                       flow-control window (the peer may send 65 535 bytes)
  h2_abuse.py HOST:PORT open-upload PATH
                                       POST PATH with 10 bytes of body, and the request never ends
  h2_abuse.py HOST:PORT malformed KIND a request HTTP/2 calls malformed on stream 1 (KIND:
                                       uppercase, connection, te, space-in-path, no-path,
                                       pseudo-after-field), then GET / on stream 3

Prints one line per frame received: "<TYPE> stream=<id> code=<error code>" (code for GOAWAY and
RST_STREAM), then CLOSED when the peer closed, TIMEOUT after 3 s of silence, or DONE when the
answer on stream 3 of a malformed case has ended.
"""
import socket
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TYPES = {0: "DATA", 1: "HEADERS", 3: "RST_STREAM", 4: "SETTINGS", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE"}


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_headers(authority, path="/", method=b"\x82"):
    # HPACK: :method GET (0x82) or POST (0x83), :scheme http (0x86), :path literal (0x44),
    # :authority literal (0x41).
    value, path = authority.encode(), path.encode()
    return method + b"\x86\x44" + bytes([len(path)]) + path + b"\x41" + bytes([len(value)]) + value


def literal(name, value):
    # HPACK: literal field without indexing, new name.
    name, value = name.encode(), value.encode()
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def malformed_headers(authority, kind):
    well_formed = request_headers(authority)
    blocks = {
        "uppercase": well_formed + literal("X-Bad", "1"),
        "connection": well_formed + literal("connection", "close"),
        "te": well_formed + literal("te", "gzip"),
        "space-in-path": request_headers(authority, "/a HTTP/1.1"),
        "no-path": b"\x82\x86\x41" + bytes([len(authority)]) + authority.encode(),
        "pseudo-after-field": b"\x82\x86" + literal("accept", "*/*") + b"\x44\x01/",
    }
    return blocks[kind]


def main(target, case, path="/"):
    host, port = target.rsplit(":", 1)
    connection = socket.create_connection((host, int(port)), timeout=3)
    settings = frame(4, 0, 0, b"")
    if case == "bad-preface":
        connection.sendall(PREFACE + frame(6, 0, 0, b"\x00" * 8))
    elif case == "frame-size":
        connection.sendall(PREFACE + settings + frame(6, 0, 0, b"\x00" * 7))
    elif case == "closed-stream":
        headers = frame(1, 0x5, 1, request_headers(target))  # END_STREAM | END_HEADERS
        connection.sendall(PREFACE + settings + headers + headers)
    elif case in ("idle", "idle-no-ack"):
        connection.sendall(PREFACE + settings)
    elif case == "open-upload":
        headers = frame(1, 0x4, 1, request_headers(target, path, method=b"\x83"))  # END_HEADERS only
        connection.sendall(PREFACE + settings + headers + frame(0, 0, 1, b"x" * 10))
    elif case == "malformed":
        bad = frame(1, 0x5, 1, malformed_headers(target, path))
        good = frame(1, 0x5, 3, request_headers(target))
        connection.sendall(PREFACE + settings + bad + good)
    elif case == "stalled-reader":
        connection.sendall(PREFACE + settings + frame(1, 0x5, 1, request_headers(target, path)))
    else:
        raise SystemExit(f"unknown case {case}")
    buffer = b""
    ending = "CLOSED"
    while True:
        try:
            data = connection.recv(65536)
        except socket.timeout:
            ending = "TIMEOUT"
            break
        if not data:
            break
        buffer += data
        while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[0:3], "big"):
            length = int.from_bytes(buffer[0:3], "big")
            kind, flags, stream = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            payload = buffer[9:9 + length]
            buffer = buffer[9 + length:]
            code = ""
            if kind == 7 and len(payload) >= 8:
                code = f" code={int.from_bytes(payload[4:8], 'big')}"
            elif kind == 3 and len(payload) >= 4:
                code = f" code={int.from_bytes(payload[0:4], 'big')}"
            print(f"{TYPES.get(kind, kind)} stream={stream}{code}", flush=True)
            if case == "malformed" and stream == 3 and flags & 1:
                connection.close()
                print("DONE", flush=True)
                return
            if case == "idle" and kind == 6 and not flags & 1:
                try:
                    connection.sendall(frame(6, 1, 0, payload))  # PING ACK
                except OSError:
                    pass
    print(ending, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
