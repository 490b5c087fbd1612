#!/usr/bin/env python3
"""WebSocket peers from the `websockets` library (nobody here wrote them).

  ws_echo.py server          echo server; prints "PORT <n>"
  ws_echo.py client URL N    sends N messages (text and binary), checks every echo, prints "OK <n>"
"""
import asyncio
import os
import sys

import websockets


async def serve():
    async def echo(connection):
        async for message in connection:
            await connection.send(message)

    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        print("PORT", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


async def client(url, count):
    async with websockets.connect(url, max_size=None) as connection:
        for index in range(count):
            message = f"message {index}" if index % 2 == 0 else os.urandom(1024 * (index % 64 + 1))
            await connection.send(message)
            reply = await asyncio.wait_for(connection.recv(), timeout=10)
            if reply != message:
                print("MISMATCH at", index, flush=True)
                sys.exit(1)
    print("OK", count, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(serve())
    else:
        asyncio.run(client(sys.argv[2], int(sys.argv[3])))
