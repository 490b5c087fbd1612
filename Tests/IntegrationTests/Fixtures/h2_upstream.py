#!/usr/bin/env python3
"""An h2c server (prior knowledge) on raw sockets that misbehaves on cue. Prints "PORT <n>".

  h2_upstream.py late-answers N   holds the first N requests unanswered; when the client resets one
                                  of them, answers every one still held at once, before reading the
                                  other resets (a server whose answers cross the client's resets)
  h2_upstream.py protocol-error   answers the first request with a DATA frame on a stream the
                                  client never opened (a connection error), and sends nothing else
                                  on that connection
  h2_upstream.py goaway          answers the first request on each connection, then sends GOAWAY
                                  (NO_ERROR) naming it and keeps the connection open; later
                                  answers say how many connections the client has closed:
                                  "connection <k>, <n> closed by the client"
  h2_upstream.py reset           answers every request with RST_STREAM (INTERNAL_ERROR)
  h2_upstream.py bad-header-first
                                  holds the first request on each connection until a second
                                  arrives, then answers the first with an uppercase field name (a
                                  stream error) and, 0.3 s later, the second as usual
  h2_upstream.py bad-trailers    answers with a head, part of a body, then trailers carrying a
                                  pseudo-header (malformed); notes in its output how each of its
                                  streams ended ("stream <id> reset <code>")
  h2_upstream.py cut-off         answers the first request on each connection with a head and part
                                  of a body, then closes the connection
  h2_upstream.py echo-frames      answers each request once it has ended with the frames it came
                                  in, e.g. "HEADERS+END_STREAM" or "HEADERS DATA DATA+END_STREAM"
  h2_upstream.py stalled-reader S never returns flow-control window, so a client can send one
                                  window (65 535 bytes) of request body; S seconds after a request
                                  started, answers "received <bytes>" and resets the stream

A GOAWAY from the client does not close the connection (nginx keeps it too, for the streams in
flight): the client has to. Every other request is answered at once: 200 with the body "connection <k>", k counting the
connections this server accepted, so a test can tell whether a client reused a connection.
"""
import struct
import sys
import threading

from listening import listen_on_free_port

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0, 1, 3, 4, 6, 7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
STATUS_200 = b"\x88"  # HPACK: indexed :status 200

mode = sys.argv[1]
held_total = int(sys.argv[2]) if mode == "late-answers" else 0
stall_seconds = float(sys.argv[2]) if mode == "stalled-reader" else 0
lock = threading.Lock()
state = {"connections": 0, "requests": 0, "closed_by_client": 0}


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def answer(stream, connection_number):
    return frame(HEADERS, END_HEADERS, stream, STATUS_200) + frame(DATA, END_STREAM, stream, f"connection {connection_number}".encode())


def serve(connection):
    send_lock = threading.Lock()

    def send(data):
        with send_lock:
            connection.sendall(data)

    with lock:
        state["connections"] += 1
        number = state["connections"]
    buffer = b""
    while len(buffer) < len(PREFACE):
        data = connection.recv(65536)
        if not data:
            return
        buffer += data
    buffer = buffer[len(PREFACE):]
    send(frame(SETTINGS, 0, 0))
    held = []
    broken = False
    received = {}
    frames_of = {}

    def answer_stalled(stream):
        body = f"received {received.get(stream, 0)}".encode()
        send(frame(HEADERS, END_HEADERS, stream, STATUS_200) + frame(DATA, END_STREAM, stream, body)
             + frame(RST_STREAM, 0, stream, struct.pack(">I", 0)))

    while True:
        while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[0:3], "big"):
            length = int.from_bytes(buffer[0:3], "big")
            kind, flags, stream = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            payload, buffer = buffer[9:9 + length], buffer[9 + length:]
            if kind == SETTINGS and not flags & ACK:
                send(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                send(frame(PING, ACK, 0, payload))
            elif kind == HEADERS:
                with lock:
                    state["requests"] += 1
                    request = state["requests"]
                if broken:
                    continue
                if mode == "reset":
                    send(frame(RST_STREAM, 0, stream, struct.pack(">I", 2)))
                    continue
                if mode == "bad-header-first":
                    held.append(stream)
                    if len(held) == 2:
                        bad = STATUS_200 + b"\x00\x05X-Bad\x01x"  # literal field, name not lowercase
                        send(frame(HEADERS, END_HEADERS | END_STREAM, held[0], bad))
                        threading.Timer(0.3, send, [answer(held[1], number)]).start()
                    continue
                if mode == "bad-trailers":
                    trailers = b"\x88"  # :status 200 again, in trailers
                    send(frame(HEADERS, END_HEADERS, stream, STATUS_200) + frame(DATA, 0, stream, b"partial")
                         + frame(HEADERS, END_HEADERS | END_STREAM, stream, trailers))
                    continue
                if mode == "cut-off":
                    send(frame(HEADERS, END_HEADERS, stream, STATUS_200) + frame(DATA, 0, stream, b"partial"))
                    return
                if mode == "goaway":
                    with lock:
                        closed = state["closed_by_client"]
                    body = f"connection {number}, {closed} closed by the client".encode()
                    send(frame(HEADERS, END_HEADERS, stream, STATUS_200) + frame(DATA, END_STREAM, stream, body)
                         + frame(GOAWAY, 0, 0, struct.pack(">II", stream, 0)))
                    continue
                if mode == "echo-frames":
                    frames_of[stream] = ["HEADERS"]
                    if flags & END_STREAM:
                        frames_of[stream][-1] += "+END_STREAM"
                        send(frame(HEADERS, END_HEADERS, stream, STATUS_200) + frame(DATA, END_STREAM, stream, " ".join(frames_of[stream]).encode()))
                    continue
                if mode == "stalled-reader":
                    received[stream] = 0
                    threading.Timer(stall_seconds, answer_stalled, [stream]).start()
                    continue
                if mode == "protocol-error" and request == 1:
                    send(frame(DATA, END_STREAM, stream + 998, b"x"))
                    broken = True
                elif request <= held_total:
                    held.append(stream)
                else:
                    send(answer(stream, number))
            elif kind == DATA and stream in frames_of:
                frames_of[stream].append("DATA+END_STREAM" if flags & END_STREAM else "DATA")
                if flags & END_STREAM:
                    send(frame(HEADERS, END_HEADERS, stream, STATUS_200) + frame(DATA, END_STREAM, stream, " ".join(frames_of[stream]).encode()))
            elif kind == DATA and stream in received:
                received[stream] += length
            elif kind == RST_STREAM and mode == "bad-trailers":
                print(f"stream {stream} reset {int.from_bytes(payload[0:4], 'big')}", flush=True)
            elif kind == RST_STREAM and stream in held:
                held.remove(stream)
                send(b"".join(answer(other, number) for other in held))
                held.clear()
        data = connection.recv(65536)
        if not data:
            with lock:
                state["closed_by_client"] += 1
            return
        buffer += data


def main():
    server = listen_on_free_port()
    while True:
        connection, _ = server.accept()
        threading.Thread(target=serve_and_close, args=(connection,), daemon=True).start()


def serve_and_close(connection):
    try:
        serve(connection)
    finally:
        connection.close()


if __name__ == "__main__":
    main()
