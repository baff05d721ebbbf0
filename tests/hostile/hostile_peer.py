#!/usr/bin/env python3
"""A hostile HTTP peer for loadgen's cases (issue 14): prints its port, then serves MODE.

usage: hostile_peer.py MODE     MODE: hang | garbage | slow | bomb
  hang     accept, read, never answer
  garbage  answer every request with bytes that are not HTTP
  slow     answer each request after 3 s
  bomb     answer every request with a 1 MB gzip of 1 GiB of zeros (at --profile-url)
Exits when its parent closes stdin or after 60 s.
"""
import gzip
import io
import socket
import sys
import threading
import time
import zlib

mode = sys.argv[1]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(1024)

# The bomb is made before the port is printed, so that a client's clock measures the client.
bomb = b""
if mode == "bomb":
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = [z.compress(chunk) for _ in range(1024)]
    bomb = b"".join(parts) + z.flush()
print(srv.getsockname()[1], flush=True)


def serve(c):
    try:
        c.settimeout(30)
        while True:
            data = c.recv(65536)
            if not data:
                return
            if mode == "hang":
                continue
            if mode == "garbage":
                c.sendall(b"\x00\x01garbage that is not HTTP\r\n\r\n")
                continue
            if mode == "slow":
                time.sleep(3)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                continue
            if mode == "bomb":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(bomb) + bomb)
    except OSError:
        pass
    finally:
        c.close()


def accept_loop():
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


threading.Thread(target=accept_loop, daemon=True).start()
deadline = time.time() + 60
while time.time() < deadline:
    if sys.stdin.read(1) == "":
        break
