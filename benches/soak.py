#!/usr/bin/env python3
"""Soak: VerifySeller at saturation for a long run, ES256 tokens, decision records `all`.

    python3 benches/soak.py [--minutes 10] [--sellers 180000] [--connections 16] [--streams 32]
                            [--database-url postgres://…]

Passes (exit 0) only when, over the whole run:
- zero errors: every request h2load sent answered HTTP 200 and the server counted every VerifySeller
  as gRPC OK (`safeguard_rpc_requests_total`), none shed, timed out or refused;
- RSS stayed flat: the mean RSS of the last minute is within 5% of the first minute's;
- every decision was recorded: after the load stops and the recorder drains, the decision records
  written (`safeguard_decision_records_written_total`) equal the decisions made
  (`safeguard_decisions_total`), none lost or quarantined, and the database holds that many rows.

It reuses the build, server and load helpers of benches/grpc_vs_echo.py. Needs h2load (Debian:
nghttp2-client).
"""

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_vs_echo as bench  # noqa: E402


def scrape(port):
    """Sums each metric over its labels (with the labels kept for the RPC counter)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"([a-z_]+)(\{[^}]*\})?\s+(\S+)", line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        out[name] = out.get(name, 0.0) + value
        if name == "safeguard_rpc_requests_total":
            out[name + labels] = value
    return out


def rows_in_db(db_url):
    if db_url.startswith("sqlite://"):
        path = db_url[len("sqlite://"):].split("?")[0]
        with sqlite3.connect(path) as c:
            return c.execute("select count(*) from decisions").fetchone()[0]
    return int(subprocess.run(["psql", db_url, "-Atc", "select count(*) from decisions"], check=True,
                              capture_output=True, text=True).stdout.strip())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--sellers", type=int, default=180_000)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--streams", type=int, default=32)
    p.add_argument("--database-url", help="PostgreSQL URL (a fresh database) instead of SQLite")
    a = p.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load is missing: apt-get install nghttp2-client")
    binary, helper = bench.build()
    work = tempfile.mkdtemp(prefix="sg-soak-")
    data = os.path.join(work, "sellers.csv")
    bench.run([binary, "generate", "--sellers", str(a.sellers), "--output", data])
    db_url = a.database_url or f"sqlite://{work}/safeguard.db?mode=rwc"
    bench.run([binary, "--database-url", db_url, "import", data], env=bench.safeguard_env(work, db_url, 0, "off"))
    token = bench.run([helper, "token", "--key", os.path.join(bench.KEYS, "es256.key"), "--audience", "safeguard"]).strip()

    port, metrics_port = bench.free_port(), bench.free_port()
    env = bench.safeguard_env(work, db_url, port, "all")
    env["SAFEGUARD__METRICS__LISTEN_ADDR"] = f"127.0.0.1:{metrics_port}"
    sg = bench.Server("safeguard", [binary, "serve"], env, port, bench.health_ok(binary, port))
    bodies = os.path.join(work, "bodies")
    bench.run([helper, "bodies", "--addr", sg.url(), "--token", token, "--out", bodies])
    before = scrape(metrics_port)
    rows_before = rows_in_db(db_url)

    seconds = int(a.minutes * 60)
    samples = []  # (seconds since start, RSS bytes)
    stop = threading.Event()

    def sample():
        t0 = time.monotonic()
        while not stop.wait(1.0):
            samples.append((time.monotonic() - t0, bench.rss_bytes(sg.proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    print(f"soak: {a.minutes:g} min, {a.connections} connections × {a.streams} streams, ES256, records all, "
          f"{a.sellers} sellers, {'PostgreSQL' if a.database_url else 'SQLite'}", flush=True)
    res = bench.h2load(sg, os.path.join(bodies, "allow.bin"), token, a, a.connections, a.streams, seconds)
    stop.set()
    sampler.join()

    # Let the recorder drain: written stops growing and nothing is queued.
    for _ in range(120):
        m = scrape(metrics_port)
        if m.get("safeguard_decision_records_queued", 0) == 0:
            time.sleep(1)
            if scrape(metrics_port).get("safeguard_decision_records_written_total") == m.get(
                    "safeguard_decision_records_written_total"):
                break
        time.sleep(1)
    after = scrape(metrics_port)
    rows = rows_in_db(db_url) - rows_before
    sg.stop()

    delta = lambda k: after.get(k, 0) - before.get(k, 0)
    decisions = delta("safeguard_decisions_total")
    written = delta("safeguard_decision_records_written_total")
    lost = delta("safeguard_decision_records_lost_total")
    quarantined = delta("safeguard_decision_records_quarantined_total")
    waited = delta("safeguard_decision_records_waited_total")
    ok = delta('safeguard_rpc_requests_total{method="VerifySeller",code="OK"}')
    verify_all = sum(v - before.get(k, 0) for k, v in after.items()
                     if k.startswith('safeguard_rpc_requests_total{method="VerifySeller"'))
    first = [r for t, r in samples if 5 <= t < 65]
    last = [r for t, r in samples if t >= seconds - 60]
    mean = lambda xs: sum(xs) / max(len(xs), 1)
    drift = mean(last) / max(mean(first), 1) - 1

    minutes = [mean([r for t, r in samples if m * 60 <= t < (m + 1) * 60]) / 2**20 for m in range(int(a.minutes))]
    print(f"req/s {res['rps']:.0f}, p50 {res['p50']} µs, p99 {res['p99']} µs, cpu {res['cpu_us']:.1f} µs/req")
    print("RSS MiB by minute: " + " ".join(f"{x:.1f}" for x in minutes))
    print(f"HTTP errors {res['errors']}; VerifySeller answered {verify_all:.0f}, OK {ok:.0f}; decisions {decisions:.0f}, "
          f"records written {written:.0f}, rows in database {rows}, lost {lost:.0f}, quarantined {quarantined:.0f}; "
          f"decisions that waited for room in the record queue {waited:.0f}")
    print(f"RSS first minute {mean(first) / 2**20:.1f} MiB, last minute {mean(last) / 2**20:.1f} MiB, drift {drift * 100:+.1f}%")
    for k, v in sorted(after.items()):
        if k.startswith('safeguard_rpc_requests_total{method="VerifySeller"') and 'code="OK"' not in k:
            print(f"not OK: {k} {v - before.get(k, 0):.0f}")
    failures = []
    if res["errors"] or verify_all != ok or ok == 0:
        failures.append("errors")
    if abs(drift) > 0.05:
        failures.append("RSS not flat")
    if not (decisions == written == rows == ok) or lost or quarantined:
        failures.append("decisions not all recorded")
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit("soak FAILED: " + ", ".join(failures))
    print("soak passed")


if __name__ == "__main__":
    main()
