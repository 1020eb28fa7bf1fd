#!/usr/bin/env python3
"""Signed request throughput: GET /api/v1/jobs/{id} with signature verification, measured with
wrk, against the same request unsigned (a dlabd with `auth: none`, where requests without
credentials act as the superadmin). Both runs go through the same wrk Lua script with the same
headers, less Authorization for the unsigned one, so that wrk (which shares the machine) does
the same work in both.

Every signed request is distinct (its own X-Dlab-Nonce), since dlabd refuses a replayed
signature: the requests are signed beforehand with the SDK's signing code (python/dlab/_auth.py)
into a file that a wrk Lua script (bench/signed_requests.lua) sends one after another. They stay
valid for the 5 minute signing window, so each run signs afresh. Runs alternate signed and
unsigned; prints requests/s per run and the medians. Needs wrk (`make bench` installs it).

    bench/signed_requests.py [--runs 3] [--seconds 10] [--connections 32] [--threads 2]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlabd_harness import BENCH_KEY, Dlabd, _auth, median, request  # noqa: E402

CONFIG = "node: {cpus: 2, memory: 4Gi, gpus: none}\nkill_grace: 1s\n"
LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "signed_requests.lua")


def prepare(d):
    """A finished job to GET; its path."""
    c = d.conn()
    status, job = request(c, "POST", "/api/v1/jobs", {"spec": {"name": "target", "command": "true"}})
    assert status == 201, job
    deadline = time.time() + 60
    while time.time() < deadline:
        status, body = request(c, "GET", "/api/v1/jobs/%d" % job["id"])
        if body["state"] == "SUCCEEDED":
            return "/api/v1/jobs/%d" % job["id"]
        time.sleep(0.1)
    raise RuntimeError("the target job did not finish")


def sign_many(d, path, count, out):
    """count distinct signed GETs of path, one per line: nonce, date and the Authorization
    value, tab-separated (whole, so that wrk's Lua builds no strings per request)."""
    host = "%s:%d" % (d.host, d.port)
    t0 = time.time()
    with open(out, "w") as f:
        for _ in range(count):
            nonce = _auth.new_nonce()
            headers = {"host": host, "x-dlab-nonce": nonce}
            signed = _auth.sign("GET", path, [], headers, None, *BENCH_KEY,
                                also_sign=["x-dlab-nonce"])
            f.write("%s\t%s\t%s\n" % (nonce, signed["X-Dlab-Date"], signed["Authorization"]))
    return time.time() - t0


def wrk(args, url, env):
    cmd = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % args.seconds,
           "--latency", url]
    cmd[1:1] = ["-s", LUA]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **env),
                         timeout=args.seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    return rps, int(non2xx.group(1)) if non2xx else 0, p50, p99


def one(args, signed, tmp):
    config = CONFIG if signed else CONFIG + "auth: none\n"
    with Dlabd(config) as d:
        path = prepare(d)
        lines = os.path.join(tmp, "signed.txt")
        # More than wrk can send in the time: a request is never reused (a replay is a 401).
        # The unsigned run sends the same requests without their Authorization header.
        took = sign_many(d, path, args.max_rate * args.seconds, lines)
        env = {"DLAB_SIGNED": lines,
               "DLAB_THREADS": str(args.threads), "DLAB_UNSIGNED": "0" if signed else "1",
               "DLAB_HOST": "%s:%d" % (d.host, d.port)}
        print("  signed %d requests in %.1f s" % (args.max_rate * args.seconds, took),
              flush=True)
        rps, non2xx, p50, p99 = wrk(args, d.url + path, env)
        if non2xx:
            raise RuntimeError("%d responses were not 2xx (see the dlabd log)" % non2xx)
        return rps, p50, p99


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-rate", type=int, default=60000,
                   help="requests per second to sign for (more than wrk reaches)")
    args = p.parse_args()
    print("== signed request throughput: GET /api/v1/jobs/{id}, wrk -t%d -c%d -d%ds, %d CPUs"
          % (args.threads, args.connections, args.seconds, os.cpu_count()))
    results = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="dlab-signed-") as tmp:
        for i in range(args.runs):
            for signed in (False, True):
                rps, p50, p99 = one(args, signed, tmp)
                results[signed].append(rps)
                print("run %d %-8s %10.0f req/s  p50 %s  p99 %s"
                      % (i + 1, "signed" if signed else "unsigned", rps, p50, p99), flush=True)
    unsigned, signed = median(results[False]), median(results[True])
    print("median unsigned %.0f req/s, signed %.0f req/s, signed/unsigned %.3f"
          % (unsigned, signed, signed / unsigned))


if __name__ == "__main__":
    main()
