#!/usr/bin/env python3
"""loadgen against dead and hostile peers (issue 14): bounded in time and memory, and an exit
status and a message that say it failed. Each case was once exit 0, a hang, or 1 GB of RSS.

usage: hostile_loadgen.py BUILD_BIN_DIR [RSS_BOUND_MB]   (default 200; sanitizer builds pass more)

The peers are tests/hostile/hostile_peer.py (hang | garbage | slow | bomb) on 127.0.0.1 port 0,
one process per case, stopped by PID; the healthy target for the --profile-url cases is leaky
on port 0. Every wait is bounded. Cases (--duration 2s unless said):
  garbage      --url answers bytes that are not HTTP: exit 4, "no request succeeded", protocol
               errors counted, done within the duration + 3 s.
  hang         --url accepts and never answers: exit 4, "no request succeeded", done within the
               duration + --timeout + 3 s.
  slow         --url answers after 3 s, --timeout 1s: exit 4, timeouts counted; with the default
               --timeout (5s) the answers count (exit 0), the summary says how little of the
               rate was asked, and the run still ends within the duration + 3 s + 3 s.
  refused      --url on a port nobody listens on: exit 1 at start, naming the URL.
  connections  --connections 100000: refused with exit 2 (the cap is 10000).
  bomb         --profile-url answers a 1 MB gzip of 1 GiB: exit 1, "gzip bomb", under
               RSS_BOUND_MB of RSS (the cap is 64 MiB decompressed; it took 1.05 GB) and within
               the duration + --timeout + 3 s.
  profile-hang --profile-url never answers: exit 1 naming the profile URL, bounded.
  profile-garbage --profile-url answers garbage: exit 1 naming the profile URL.
"""
import os
import re
import resource
import subprocess
import sys
import time

BIN = sys.argv[1]
RSS_BOUND_KB = int(sys.argv[2] if len(sys.argv) > 2 else 200) * 1024
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile_peer.py")
LOADGEN = os.path.join(BIN, "loadgen")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, flush=True)


def peer(mode):
    p = subprocess.Popen([sys.executable, PEER, mode], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    port = p.stdout.readline().strip()
    if not port.isdigit():
        p.kill()
        raise SystemExit("hostile_peer.py %s printed no port" % mode)
    return p, int(port)


def stop(p):
    if p.poll() is None:
        p.kill()
    p.wait(timeout=10)


def start_leaky():
    p = subprocess.Popen([os.path.join(BIN, "leaky"), "--listen", "127.0.0.1:0", "--debug-listen",
                          "127.0.0.1:0", "--threads", "1"], stdout=subprocess.PIPE, text=True)
    url = None
    deadline = time.time() + 20
    while url is None and time.time() < deadline:
        line = p.stdout.readline()
        m = re.match(r"listening /process (http://\S+)", line)
        if m:
            url = m.group(1)
    if url is None:
        p.kill()
        raise SystemExit("leaky did not start listening")
    return p, url


def max_child_rss_kb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # of the largest child waited for


def run(name, args, want_status, want_stderr, bound_s, want_stdout=None):
    """Run loadgen ARGS; check its status, a regex on stderr (and stdout), and its time."""
    t0 = time.time()
    try:
        r = subprocess.run([LOADGEN] + args, capture_output=True, text=True, timeout=bound_s + 30)
    except subprocess.TimeoutExpired:
        fail("%s: loadgen still running after %.0f s" % (name, bound_s + 30))
        return None
    took = time.time() - t0
    print("%s: exit %d in %.2f s" % (name, r.returncode, took), flush=True)
    if r.returncode != want_status:
        fail("%s: exit %d, want %d; stderr: %s" % (name, r.returncode, want_status, r.stderr[-600:]))
    if want_stderr and not re.search(want_stderr, r.stderr, re.M):
        fail("%s: stderr lacks /%s/: %s" % (name, want_stderr, r.stderr[-600:]))
    if want_stdout and not re.search(want_stdout, r.stdout, re.M):
        fail("%s: stdout lacks /%s/: %s" % (name, want_stdout, r.stdout[-600:]))
    if took > bound_s:
        fail("%s: took %.2f s, bound %.1f s" % (name, took, bound_s))
    return r


def case_garbage():
    p, port = peer("garbage")
    try:
        run("garbage", ["--url", "http://127.0.0.1:%d/process" % port, "--rate", "100",
                        "--duration", "2s"], 4, r"^loadgen: no request succeeded", 5.0,
            want_stdout=r"errors: .*protocol [1-9]")
    finally:
        stop(p)


def case_hang():
    p, port = peer("hang")
    try:
        run("hang", ["--url", "http://127.0.0.1:%d/process" % port, "--rate", "100",
                     "--duration", "2s", "--timeout", "1s"], 4, r"^loadgen: no request succeeded",
            2.0 + 1.0 + 3.0)
    finally:
        stop(p)


def case_slow():
    p, port = peer("slow")
    try:
        run("slow --timeout 1s", ["--url", "http://127.0.0.1:%d/process" % port, "--rate", "100",
                                  "--duration", "2s", "--timeout", "1s"], 4,
            r"^loadgen: no request succeeded", 2.0 + 1.0 + 3.0,
            want_stdout=r"errors: .*timeout [1-9]")
        r = run("slow", ["--url", "http://127.0.0.1:%d/process" % port, "--rate", "100",
                         "--duration", "2s"], 0, None, 2.0 + 3.0 + 3.0,
                want_stdout=r"requests \d+ \(.*, (\d+\.\d)% of the rate asked\)")
        if r is not None:
            m = re.search(r"(\d+\.\d)% of the rate asked", r.stdout)
            if m and float(m.group(1)) >= 50:
                fail("slow: %s%% of the rate asked: the shortfall is not reported" % m.group(1))
    finally:
        stop(p)


def case_refused():
    s = __import__("socket").socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # bound, never listening: connections are refused
    try:
        run("refused", ["--url", "http://127.0.0.1:%d/process" % port, "--duration", "2s"], 1,
            r"127\.0\.0\.1:%d" % port, 5.0)
    finally:
        s.close()


def case_connections():
    run("connections", ["--url", "http://127.0.0.1:1/process", "--connections", "100000"], 2,
        r"--connections", 2.0)


def case_profile(mode, want):
    leaky, url = start_leaky()
    p, port = peer(mode)
    try:
        run("profile-" + mode, ["--url", url + "/process", "--rate", "100", "--duration", "2s",
                                "--timeout", "1s", "--profile-url",
                                "http://127.0.0.1:%d/debug/pprof/heap" % port,
                                "--profile-every", "500ms"], 1, want, 2.0 + 1.0 + 3.0)
        rss = max_child_rss_kb()
        if mode == "bomb":
            print("bomb: loadgen max RSS %d KB" % rss, flush=True)
            if rss > RSS_BOUND_KB:
                fail("bomb: a child reached %d KB of RSS, bound %d KB" % (rss, RSS_BOUND_KB))
    finally:
        stop(p)
        leaky.terminate()
        leaky.wait(timeout=10)


case_garbage()
case_hang()
case_slow()
case_refused()
case_connections()
# The RSS bound reads the largest child so far (every peer, leaky and loadgen run until then).
case_profile("bomb", r"http://127\.0\.0\.1:\d+/debug/pprof/heap.*gzip bomb")
case_profile("hang", r"http://127\.0\.0\.1:\d+/debug/pprof/heap")
case_profile("garbage", r"http://127\.0\.0\.1:\d+/debug/pprof/heap")
if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("ok: loadgen against garbage, hang, slow, refused, 100000 connections, a gzip bomb, and a "
      "hanging or garbage profile URL")
