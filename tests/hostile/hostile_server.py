#!/usr/bin/env python3
"""Hostile clients against the real leaky server (issue 14): each case is a failure once seen.

usage: hostile_server.py BUILD_BIN_DIR

Starts leaky on port 0 (loopback) for each group of cases, kills it by PID at the end, and
bounds every wait. Cases:
  head        HEAD then GET on one connection: the HEAD reply has a Content-Length and no body,
              so the GET's status line comes next (on /process and on a /debug path).
  framing     conflicting Content-Length -> 400 and the connection closes (the rest is never
              parsed as a request); Content-Length with Transfer-Encoding -> 400; an unknown
              method -> 405 with Allow (not evhttp's 501).
  deadline    a client trickling one header line every 0.3 s with --header-timeout 1s is cut
              within 1 s + one tick (0.25 s) + slack; a normal keep-alive client is not.
  fdlimit     prlimit --nofile=64 and 150 connections: the server stays under 0.3 cores, logs
              under 4 KB, still answers a connection it had, and accepts again once they go.
  oom         ulimit -v and 100 KB entries until /process answers 503: new /process and
              /debug connections get an answer (200 or 503), never a crash.
"""
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time

BIN = sys.argv[1]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, flush=True)


def start(args, limit_fds=None, limit_as=None):
    def pre():
        if limit_fds:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit_fds, limit_fds))
        if limit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
    err = open(os.path.join(TMP, "server.err"), "w+")
    p = subprocess.Popen([os.path.join(BIN, "leaky"), "--listen", "127.0.0.1:0",
                          "--debug-listen", "127.0.0.1:0"] + args,
                         stdout=subprocess.PIPE, stderr=err, preexec_fn=pre, text=True)
    ports = {}
    deadline = time.time() + 10
    while len(ports) < 2 and time.time() < deadline:
        line = p.stdout.readline()
        m = re.match(r"listening (/\w+) http://127.0.0.1:(\d+)", line)
        if m:
            ports[m.group(1)] = int(m.group(2))
    if len(ports) < 2:
        p.kill()
        raise SystemExit("FAIL: leaky did not start")
    p.errfile = err
    return p, ports["/process"], ports["/debug"]


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def exchange(port, data, wait=1.0, want=1):
    """Send data; read until the server closes, or until it has sent at least `want` status
    lines and then been quiet for `wait` seconds (so extra replies, such as a smuggled
    request's, are still caught), or 20 s have passed. The quiet period only starts counting
    once the expected replies are in: on a busy machine a reply may take longer than `wait`."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    out = b""
    deadline = time.time() + 20
    try:
        while time.time() < deadline:
            enough = len(statuses(out)) >= want
            s.settimeout(wait if enough else max(0.01, deadline - time.time()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                if enough:
                    break
                continue
            if not b:
                break
            out += b
    except ConnectionResetError:
        pass
    s.close()
    return out


def statuses(raw):
    return re.findall(rb"^HTTP/1\.1 (\d{3})", raw, re.M)


def case_head(P, D):
    for port, path in ((P, b"/process"), (D, b"/debug/pprof/heap"), (D, b"/debug/memstats")):
        raw = exchange(port, b"HEAD " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n" +
                       b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n", want=2)
        head, _, rest = raw.partition(b"\r\n\r\n")
        if not re.search(rb"(?im)^Content-Length: \d+", head):
            fail("HEAD %s: no Content-Length in %r" % (path, head[:200]))
        if not rest.startswith(b"HTTP/1.1 "):
            fail("HEAD %s: a body follows the headers: %r" % (path, rest[:40]))


def case_framing(P, D):
    raw = exchange(P, b"POST /process HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                      b"Content-Length: 5\r\n\r\nabcdeGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
    if statuses(raw) != [b"400"]:
        fail("conflicting Content-Length: statuses %r, want one 400" % statuses(raw))
    raw = exchange(D, b"POST /debug/pprof/symbol HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                      b"Content-Length: 40\r\n\r\nxGET /debug/pprof/cmdline HTTP/1.1\r\n\r\n")
    if statuses(raw) != [b"400"]:
        fail("conflicting Content-Length on /debug: statuses %r, want one 400" % statuses(raw))
    raw = exchange(P, b"POST /process HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    if statuses(raw)[:1] != [b"400"]:
        fail("Content-Length with Transfer-Encoding: statuses %r, want 400" % statuses(raw))
    for port, path in ((P, b"/process"), (D, b"/debug/pprof/heap")):
        raw = exchange(port, b"FOO " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        if statuses(raw) != [b"405"] or not re.search(rb"(?im)^Allow: ", raw):
            fail("unknown method on port %d: %r, want 405 with Allow" % (port, raw[:80]))


def case_deadline(P):
    s = socket.create_connection(("127.0.0.1", P), timeout=5)
    t0 = time.time()
    s.sendall(b"GET /process HTTP/1.1\r\n")
    cut = None
    try:
        for _ in range(20):  # 6 s of trickling at most
            time.sleep(0.3)
            s.sendall(b"X-Slow: 1\r\n")
    except (BrokenPipeError, ConnectionResetError):
        cut = time.time() - t0
    if cut is None:
        try:
            s.settimeout(0.5)
            if s.recv(1) == b"":
                cut = time.time() - t0
        except (socket.timeout, ConnectionResetError):
            pass
    s.close()
    if cut is None or cut > 3.0:
        fail("a trickling client held its connection %s s with --header-timeout 1s" % cut)
    # A keep-alive client that idles between whole requests is not cut by the deadline.
    k = socket.create_connection(("127.0.0.1", P), timeout=5)
    for _ in range(3):
        k.sendall(b"GET /process HTTP/1.1\r\nHost: t\r\n\r\n")
        if not k.recv(4096).startswith(b"HTTP/1.1 200"):
            fail("keep-alive client cut by the header deadline")
            break
        time.sleep(0.8)
    k.close()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def case_fdlimit():
    p, P, D = start(["--threads", "1"], limit_fds=64)
    old = socket.create_connection(("127.0.0.1", P), timeout=5)
    old.sendall(b"GET /process HTTP/1.1\r\nHost: t\r\n\r\n")
    old.recv(4096)
    flood = []
    for _ in range(150):  # non-blocking connects: the backlog takes what accept does not
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", P))
        flood.append(s)
    time.sleep(0.5)
    c0, t0 = cpu_seconds(p.pid), time.time()
    time.sleep(2)
    cores = (cpu_seconds(p.pid) - c0) / (time.time() - t0)
    print("fdlimit: %.3f cores while out of fds" % cores)
    if cores > 0.3:
        fail("out of fds, leaky spins: %.2f cores" % cores)
    old.sendall(b"GET /process HTTP/1.1\r\nHost: t\r\n\r\n")
    old.settimeout(3)
    if not old.recv(4096).startswith(b"HTTP/1.1 200"):
        fail("out of fds, an open connection is no longer served")
    for s in flood:
        s.close()
    time.sleep(1.5)  # the longest pause is 1 s
    raw = exchange(P, b"GET /process HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 3)
    if statuses(raw) != [b"200"]:
        fail("after the fds came back, a new connection got %r" % raw[:60])
    old.close()
    stop(p)
    p.errfile.seek(0)
    log = p.errfile.read()
    print("fdlimit: %d bytes on stderr" % len(log))
    if len(log) > 4096 or "Too many open files" not in log:
        fail("out of fds, stderr has %d bytes (want one rate-limited line)" % len(log))


def case_oom():
    p, P, D = start(["--entry-bytes", "1000000", "--threads", "1"], limit_as=400 << 20)
    k = socket.create_connection(("127.0.0.1", P), timeout=5)
    got503 = False
    for _ in range(2000):
        k.sendall(b"GET /process HTTP/1.1\r\nHost: t\r\n\r\n")
        r = k.recv(4096)
        if r.startswith(b"HTTP/1.1 503"):
            got503 = True
            break
        if not r:
            break
    if not got503:
        fail("never ran out of memory (no 503 from /process)")
    answers = []
    for i in range(20):
        port, path = (D, b"/debug/pprof/heap") if i % 2 else (P, b"/process")
        raw = exchange(port, b"GET " + path + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 3, want=0)
        answers.append(statuses(raw)[:1])
        if p.poll() is not None:
            break
    print("oom: answers %r" % [a[0].decode() if a else "-" for a in answers])
    if p.poll() is not None:
        fail("leaky died out of memory (status %s)" % p.returncode)
    elif any(a and a[0] not in (b"200", b"503", b"500") for a in answers):
        fail("out of memory, unexpected statuses %r" % answers)
    k.close()
    status = stop(p)
    if status != 0:
        fail("leaky out of memory exited %s on SIGTERM, want 0" % status)


TMP = os.environ.get("TMPDIR", "/tmp")
TMP = os.path.join(TMP, "hostile-%d" % os.getpid())
os.makedirs(TMP, exist_ok=True)
only = sys.argv[2:] or ["head", "framing", "deadline", "fdlimit", "oom"]
if {"head", "framing", "deadline"} & set(only):
    p, P, D = start(["--threads", "2", "--header-timeout", "1s"])
else:
    p = None
try:
    if "head" in only:
        case_head(P, D)
    if "framing" in only:
        case_framing(P, D)
    if "deadline" in only:
        case_deadline(P)
    if p is not None and p.poll() is not None:
        fail("leaky died during the HTTP cases")
finally:
    if p is not None:
        stop(p)
if "fdlimit" in only:
    case_fdlimit()
if "oom" in only:
    case_oom()
shutil.rmtree(TMP, ignore_errors=True)
print("%d failures" % len(failures))
sys.exit(1 if failures else 0)
