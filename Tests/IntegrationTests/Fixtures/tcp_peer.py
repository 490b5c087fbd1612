#!/usr/bin/env python3
"""Plain TCP peers for opaque-TCP tests.

  tcp_peer.py echo                 echoes; at the client's EOF (half-close) sends "EOF-SEEN\\n" and closes
  tcp_peer.py greeter              server-speaks-first: sends "220 weft-test ready\\r\\n" on connect, then echoes
  tcp_peer.py halfclose HOST:PORT  sends two lines, half-closes, prints everything received until the server closes
  tcp_peer.py listen HOST:PORT     connects, sends nothing, prints the first line received and the seconds it took
Servers print "PORT <n>".
"""
import socket
import sys
import threading
import time


def serve(greeting):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    print("PORT", server.getsockname()[1], flush=True)

    def handle(connection):
        with connection:
            if greeting:
                connection.sendall(b"220 weft-test ready\r\n")
            while True:
                data = connection.recv(65536)
                if not data:
                    connection.sendall(b"EOF-SEEN\n")
                    return
                connection.sendall(data)

    while True:
        connection, _ = server.accept()
        threading.Thread(target=handle, args=(connection,), daemon=True).start()


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def half_close(target):
    connection = socket.create_connection(address(target), timeout=10)
    connection.sendall(b"hello opaque world\n")
    connection.sendall(b"\x00\x01\x02 binary too\n")
    connection.shutdown(socket.SHUT_WR)
    received = b""
    while True:
        data = connection.recv(65536)
        if not data:
            break
        received += data
    print(repr(received), flush=True)


def listen(target):
    started = time.monotonic()
    connection = socket.create_connection(address(target), timeout=20)
    line = connection.makefile("rb").readline()
    print(repr(line), round(time.monotonic() - started, 3), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "echo":
        serve(False)
    elif mode == "greeter":
        serve(True)
    elif mode == "halfclose":
        half_close(sys.argv[2])
    elif mode == "listen":
        listen(sys.argv[2])
