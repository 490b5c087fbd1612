"""The listening socket every raw-socket fixture starts with (imported by them; not run itself)."""
import socket


def listen_on_free_port(backlog=16):
    """Listens on 127.0.0.1 on a port the system picks and prints "PORT <n>", which tests wait for."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(backlog)
    print("PORT", server.getsockname()[1], flush=True)
    return server
