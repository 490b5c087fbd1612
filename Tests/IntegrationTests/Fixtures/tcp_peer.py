#!/usr/bin/env python3
"""Plain TCP peers for opaque-TCP tests.

  tcp_peer.py echo                 echoes; at the client's EOF (half-close) sends "EOF-SEEN\\n" and closes
  tcp_peer.py greeter              server-speaks-first: sends "220 weft-test ready\\r\\n" on connect, then echoes
  tcp_peer.py halfclose HOST:PORT  sends two lines, half-closes, prints everything received until the server closes
  tcp_peer.py listen HOST:PORT     connects, sends nothing, prints the first line received and the seconds it took
  tcp_peer.py connect PROXY TARGET asks PROXY (host:port) for a CONNECT tunnel to TARGET, prints the answer's
                                   status line, sends "hello\n" through it, half-closes, prints the rest
Servers print "PORT <n>".
"""
import socket
import sys
import threading
import time

from listening import listen_on_free_port


def serve(greeting):
    server = listen_on_free_port()

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


def read_to_end(connection):
    received = b""
    while True:
        data = connection.recv(65536)
        if not data:
            return received
        received += data


def half_close(target):
    connection = socket.create_connection(address(target), timeout=10)
    connection.sendall(b"hello opaque world\n")
    connection.sendall(b"\x00\x01\x02 binary too\n")
    connection.shutdown(socket.SHUT_WR)
    print(repr(read_to_end(connection)), flush=True)


def listen(target):
    started = time.monotonic()
    connection = socket.create_connection(address(target), timeout=20)
    line = connection.makefile("rb").readline()
    print(repr(line), round(time.monotonic() - started, 3), flush=True)


def tunnel(proxy, target):
    connection = socket.create_connection(address(proxy), timeout=20)
    connection.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = connection.recv(1)
        if not data:
            break
        answer += data
    print(answer.split(b"\r\n")[0].decode(), flush=True)
    connection.sendall(b"hello\n")
    connection.shutdown(socket.SHUT_WR)
    print(repr(read_to_end(connection)), flush=True)


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
    elif mode == "connect":
        tunnel(sys.argv[2], sys.argv[3])
