#!/usr/bin/env python3
"""Micro-benchmark of dlab.report(), the call in a training loop's hot path.

Starts a fake dlabd (http.server on 127.0.0.1, answering the metrics and checkpoints
endpoints), points the job environment at it, then times `--calls` consecutive
dlab.report(step, loss=..., accuracy=...) calls, `--runs` times, while the background thread
sends the batches. Prints each run's mean per-call cost and the median over the runs, then checks
that every report arrived.

    /usr/bin/python3 python/bench_report.py [--runs 7] [--calls 200000] [--metrics 2]
"""

import argparse
import http.server
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.loads(body)
        if self.path.endswith("/metrics"):
            with _Handler.lock:
                _Handler.received += len(payload["reports"])
            status, answer = 200, {"accepted": len(payload["reports"])}
        else:
            status, answer = 201, dict(payload, id=1)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--metrics", type=int, default=2, help="metrics per report")
    args = parser.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ.update({"DLAB_JOB_ID": "1", "DLAB_ATTEMPT": "1", "DLAB_TOKEN": "bench",
                       "DLAB_API_URL": "http://127.0.0.1:%d" % server.server_address[1]})
    os.environ.pop("RANK", None)

    import dlab
    dlab.init()
    report = dlab.report
    names = ["loss", "accuracy", "lr", "grad_norm", "tokens_per_s", "mem", "ppl", "wd"]
    metrics = {names[i % len(names)] + ("" if i < len(names) else str(i)): 0.5 + i
               for i in range(args.metrics)}

    for step in range(1000):  # warm up: the sender thread starts, code paths get hot
        report(step, **metrics)
    dlab.flush(30)

    per_call = []
    step = 0
    for run in range(args.runs):
        start = time.perf_counter()
        for _ in range(args.calls):
            report(step, **metrics)
            step += 1
        elapsed = time.perf_counter() - start
        per_call.append(elapsed / args.calls * 1e6)
        print("run %d: %.2f us per call (%d calls in %.3f s)"
              % (run + 1, per_call[-1], args.calls, elapsed))
        flush_start = time.perf_counter()
        if not dlab.flush(60):
            sys.exit("reports were not delivered")
        print("        flushed in %.3f s" % (time.perf_counter() - flush_start))

    total = 1000 + args.runs * args.calls
    print("median: %.2f us per dlab.report() call with %d metrics (%d runs of %d calls, "
          "Python %s)" % (statistics.median(per_call), args.metrics, args.runs, args.calls,
                          sys.version.split()[0]))
    print("delivered: %d of %d reports" % (_Handler.received, total))
    if _Handler.received != total:
        sys.exit(1)


if __name__ == "__main__":
    main()
