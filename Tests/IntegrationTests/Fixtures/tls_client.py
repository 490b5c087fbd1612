#!/usr/bin/env python3
"""A TLS client (Python's ssl) that checks TLS passes through untouched.

  tls_client.py HOST:PORT CERT.pem   handshakes (SNI weft-tls-test), sends a line, prints JSON:
                                     the reply and whether the server's certificate is CERT.pem's
"""
import hashlib
import json
import socket
import ssl
import sys

host, port = sys.argv[1].rsplit(":", 1)
expected = ssl.PEM_cert_to_DER_cert(open(sys.argv[2]).read())
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with socket.create_connection((host, int(port)), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname="weft-tls-test") as tls:
        presented = tls.getpeercert(binary_form=True)
        tls.sendall(b"hello weft\n")
        reply = b""
        while not reply.endswith(b"\n"):
            data = tls.recv(1024)
            if not data:
                break
            reply += data
print(json.dumps({
    "reply": reply.decode(errors="replace").strip(),
    "certificate_matches": hashlib.sha256(presented).hexdigest() == hashlib.sha256(expected).hexdigest(),
    "version": tls.version(),
}), flush=True)
