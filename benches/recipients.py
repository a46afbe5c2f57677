#!/usr/bin/env python3
"""GET /recipients at 180,000 sellers, against a static asset of the same server as the baseline.

    python3 benches/recipients.py [--sellers 180000] [--requests 300] [--rounds 3]

Builds the release binary, generates the sellers (`safeguard generate`), imports them
(`safeguard import`) into SQLite, starts `safeguard serve` and times, over one kept-alive HTTP/1.1
connection, requests that alternate in rounds because the machine is shared and noisy:
- baseline: GET /assets/console.css (an embedded static file, no registry work);
- first page: GET /recipients; a country page: GET /recipients?country=CN&page=3;
- 304: GET /recipients with the If-None-Match of the first page.
Reported per scenario: median and p99 in ms, and the median as a ratio to the baseline's. The
first request after start (which computes the register) is reported on its own.
"""

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpc_vs_echo import ROOT, Server, free_port, run, safeguard_env  # noqa: E402  (the same helpers)


def env(work, db_url, port, console):
    e = safeguard_env(work, db_url, port, "off")
    e["SAFEGUARD__CONSOLE__LISTEN_ADDR"] = f"127.0.0.1:{console}"
    return e


def timed(conn, path, headers=None):
    t = time.perf_counter()
    conn.request("GET", path, headers=headers or {})
    res = conn.getresponse()
    body = res.read()
    return (time.perf_counter() - t) * 1000, res.status, res.getheader("ETag"), len(body)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sellers", type=int, default=180_000)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "safeguard"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(target, "release", "safeguard")
    work = tempfile.mkdtemp(prefix="sg-recipients-")
    data = os.path.join(work, "sellers.csv")
    run([binary, "generate", "--sellers", str(a.sellers), "--output", data])
    db_url = f"sqlite://{work}/safeguard.db?mode=rwc"
    t = time.monotonic()
    run([binary, "--database-url", db_url, "import", data], env=env(work, db_url, 0, 0))
    print(f"import of {a.sellers} sellers: {time.monotonic() - t:.1f} s")

    port, console = free_port(), free_port()
    server = Server("safeguard", [binary, "serve"], env(work, db_url, port, console), console)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", console)
        first, status, etag, size = timed(conn, "/recipients")
        assert status == 200, status
        print(f"first GET /recipients after start (computes the register): {first:.1f} ms, {size} bytes")
        scenarios = {
            "baseline /assets/console.css": ("/assets/console.css", {}),
            "first page /recipients": ("/recipients", {}),
            "country page /recipients?country=CN&page=3": ("/recipients?country=CN&page=3", {}),
            "304 /recipients If-None-Match": ("/recipients", {"If-None-Match": etag}),
        }
        want = {"304 /recipients If-None-Match": 304}
        times = {name: [] for name in scenarios}
        for _ in range(a.rounds):
            for name, (path, headers) in scenarios.items():
                for _ in range(a.requests):
                    ms, status, _, _ = timed(conn, path, headers)
                    assert status == want.get(name, 200), (name, status)
                    times[name].append(ms)
        base = statistics.median(times["baseline /assets/console.css"])
        print(f"{a.sellers} sellers, {a.rounds} rounds x {a.requests} requests per scenario, one connection")
        print(f"{'scenario':46} {'median ms':>10} {'p99 ms':>8} {'x baseline':>11}")
        for name, xs in times.items():
            xs.sort()
            med, p99 = statistics.median(xs), xs[int(len(xs) * 0.99) - 1]
            print(f"{name:46} {med:10.3f} {p99:8.3f} {med / base:11.2f}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
