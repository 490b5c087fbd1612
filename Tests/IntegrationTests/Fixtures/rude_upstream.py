#!/usr/bin/env python3
"""A TCP server that reads a request and closes without answering. Prints "PORT <n>"."""
from listening import listen_on_free_port

server = listen_on_free_port()
while True:
    connection, _ = server.accept()
    connection.recv(65536)
    connection.close()
