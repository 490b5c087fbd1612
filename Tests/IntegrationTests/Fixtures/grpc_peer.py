#!/usr/bin/env python3
"""gRPC peers from Python's grpcio (an independent gRPC implementation), raw-bytes messages.

  grpc_peer.py server                 serves weft.test.Echo; prints "PORT <n>"
  grpc_peer.py client TARGET SCENARIO runs one scenario through TARGET; prints one JSON line
  grpc_peer.py calls TARGET CODE=N,...  makes N unary calls ending with each status CODE
                                        (OK, NOT_FOUND, ...); prints {"CODE": count seen, ...}

Service weft.test.Echo:
  Echo     unary: returns the request; "status:<code>:<message>" aborts with that status;
           "flaky:<key>:<n>" aborts with UNAVAILABLE the first n times for <key>, then answers
           "ok after <calls>"
  Sleep    unary: prints SLEEP-STARTED, sleeps <request> ms, then answers "slept"
  Download server streaming: <request> bytes in 64 KiB messages; prints DOWNLOAD-STOPPED if cancelled
  Upload   client streaming: answers the total byte count as text
  Chat     bidirectional: echoes every message
"""
import json
import sys
import time
from concurrent import futures

import grpc

SERVICE = "weft.test.Echo"


flaky_calls = {}


def echo(request, context):
    if request.startswith(b"flaky:"):
        _, key, failures = request.decode().split(":")
        calls = flaky_calls[key] = flaky_calls.get(key, 0) + 1
        if calls <= int(failures):
            context.abort(grpc.StatusCode.UNAVAILABLE, f"flaky call {calls}")
        return f"ok after {calls}".encode()
    if request.startswith(b"status:"):
        _, code, message = request.decode().split(":", 2)
        context.abort(grpc.StatusCode[code], message)
    return request


def sleep(request, context):
    print("SLEEP-STARTED", flush=True)
    time.sleep(int(request.decode()) / 1000)
    return b"slept"


def download(request, context):
    remaining = int(request.decode())
    block = b"d" * 65536
    sent = 0
    try:
        while remaining > 0:
            part = block[: min(len(block), remaining)]
            remaining -= len(part)
            sent += len(part)
            yield part
    finally:
        if remaining > 0:
            print("DOWNLOAD-STOPPED after", sent, "bytes", flush=True)


def upload(request_iterator, context):
    return str(sum(len(message) for message in request_iterator)).encode()


def chat(request_iterator, context):
    for message in request_iterator:
        yield message


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
        "Download": grpc.unary_stream_rpc_method_handler(download),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("PORT", port, flush=True)
    server.wait_for_termination()


def client(target, scenario):
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
    method = lambda name, kind: getattr(channel, kind)(f"/{SERVICE}/{name}")
    result = {"scenario": scenario}
    try:
        if scenario == "unary":
            result["reply"] = method("Echo", "unary_unary")(b"hello weft", timeout=10).decode()
        elif scenario == "server-stream":
            total = 0
            for message in method("Download", "unary_stream")(str(20 << 20).encode(), timeout=60):
                total += len(message)
            result["bytes"] = total
        elif scenario == "client-stream":
            block = b"u" * 65536
            reply = method("Upload", "stream_unary")((block for _ in range((20 << 20) // len(block))), timeout=60)
            result["bytes"] = int(reply.decode())
        elif scenario == "bidi":
            messages = [f"message {i}".encode() for i in range(100)]
            replies = list(method("Chat", "stream_stream")(iter(messages), timeout=30))
            result["echoed"] = sum(1 for sent, got in zip(messages, replies) if sent == got)
        elif scenario == "cancel-stream":
            call = method("Download", "unary_stream")(str(1 << 30).encode(), timeout=60)
            first = next(call)
            result["first"] = len(first)
            call.cancel()
            result["code"] = call.code().name
            print(json.dumps(result), flush=True)
            return
        elif scenario == "slow":
            result["reply"] = method("Sleep", "unary_unary")(b"1500", timeout=30).decode()
        elif scenario == "error-status":
            method("Echo", "unary_unary")(b"status:NOT_FOUND:no such emoji", timeout=10)
        elif scenario.startswith("flaky:"):
            result["reply"] = method("Echo", "unary_unary")(scenario.encode(), timeout=10).decode()
        elif scenario == "short-deadline":
            started = time.time()
            try:
                method("Sleep", "unary_unary")(b"1500", timeout=0.3)
            finally:
                result["elapsed_ms"] = int((time.time() - started) * 1000)
        elif scenario == "unavailable":
            method("Echo", "unary_unary")(b"anyone there?", timeout=10)
        else:
            raise SystemExit(f"unknown scenario {scenario}")
        result["code"] = "OK"
    except grpc.RpcError as error:
        result["code"] = error.code().name
        result["details"] = error.details()
    print(json.dumps(result), flush=True)


def calls(target, plan):
    channel = grpc.insecure_channel(target)
    echo = channel.unary_unary(f"/{SERVICE}/Echo")
    seen = {}
    for item in plan.split(","):
        code, count = item.split("=")
        request = b"hello" if code == "OK" else f"status:{code}:planned {code}".encode()
        for _ in range(int(count)):
            try:
                echo(request, timeout=10)
                got = "OK"
            except grpc.RpcError as error:
                got = error.code().name
            seen[got] = seen.get(got, 0) + 1
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve()
    elif sys.argv[1] == "calls":
        calls(sys.argv[2], sys.argv[3])
    else:
        client(sys.argv[2], sys.argv[3])
