#!/usr/bin/env python3
"""Soak: VerifySeller at saturation for a long run, ES256 tokens, decision records `all`.

    python3 benches/soak.py [--minutes 10] [--sellers 180000] [--connections 16] [--streams 32]
                            [--database-url postgres://…]

Passes (exit 0) only when, over the whole run:
- zero errors: every request h2load completed answered HTTP 200 and gRPC OK, and the server counted
  no VerifySeller as anything but OK (`safeguard_rpc_requests_total`), none shed, timed out or
  refused — except the requests h2load abandons when its time is up: at most connections × streams
  were in flight then, and the server counts those it was still answering as CANCELLED (or
  UNKNOWN when the connection closed under them). They are reported, and allowed up to that bound;
- RSS stayed flat: the mean RSS of the last minute is within 5% of the first minute's (the RSS after
  a three-minute warm-up is reported too, and the anonymous and file-backed parts apart);
- every decision was recorded: after the load stops and the recorder drains, the decision records
  written (`safeguard_decision_records_written_total`, less the lost-records markers) equal the OK
  answers, and the database holds that many more records; no record was quarantined; a decision without a record is counted as lost
  (`safeguard_decision_records_lost_total`) and is one of the abandoned requests, never an answer.

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
    """(decision records, lost-records markers) in the table."""
    sql = "select count(*) filter (where lost_records = 0), count(*) filter (where lost_records > 0) from decisions"
    if db_url.startswith("sqlite://"):
        path = db_url[len("sqlite://"):].split("?")[0]
        with sqlite3.connect(path) as c:
            return tuple(c.execute(sql).fetchone())
    out = subprocess.run(["psql", db_url, "-Atc", sql], check=True, capture_output=True, text=True).stdout
    return tuple(int(x) for x in out.strip().split("|"))


def rss_parts(pid):
    """(anonymous, file-backed incl. SQLite's shared memory) resident bytes."""
    parts = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile", "RssShmem"):
                parts[key] = int(line.split()[1]) * 1024
    return parts.get("RssAnon", 0), parts.get("RssFile", 0) + parts.get("RssShmem", 0)


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
            samples.append((time.monotonic() - t0, bench.rss_bytes(sg.proc.pid), rss_parts(sg.proc.pid)))

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
    rows_after = rows_in_db(db_url)
    rows, markers = (rows_after[0] - rows_before[0], rows_after[1] - rows_before[1])
    sg.stop()

    delta = lambda k: after.get(k, 0) - before.get(k, 0)
    decisions = delta("safeguard_decisions_total")
    # The writer counts the markers it writes (one per batch that follows a loss) with the records.
    written = delta("safeguard_decision_records_written_total") - markers
    lost = delta("safeguard_decision_records_lost_total")
    quarantined = delta("safeguard_decision_records_quarantined_total")
    waited = delta("safeguard_decision_records_waited_total")
    ok = delta('safeguard_rpc_requests_total{method="VerifySeller",code="OK"}')
    verify_all = sum(v - before.get(k, 0) for k, v in after.items()
                     if k.startswith('safeguard_rpc_requests_total{method="VerifySeller"'))
    mean = lambda xs: sum(xs) / max(len(xs), 1)
    window = lambda lo, hi, part=lambda s: s[1]: mean([part(s) for s in samples if lo <= s[0] < hi])
    first, warm, last = window(5, 65), window(180, 240), window(seconds - 60, seconds + 1)
    drift = last / max(first, 1) - 1
    warm_drift = last / max(warm, 1) - 1 if seconds >= 300 else float("nan")

    mib = lambda x: f"{x / 2**20:.1f}"
    by_minute = lambda part: " ".join(mib(window(m * 60, (m + 1) * 60, part)) for m in range(int(a.minutes)))
    print(f"req/s {res['rps']:.0f}, p50 {res['p50']} µs, p99 {res['p99']} µs, cpu {res['cpu_us']:.1f} µs/req")
    print("RSS MiB by minute: " + by_minute(lambda s: s[1]))
    print("  anonymous:       " + by_minute(lambda s: s[2][0]))
    print("  file and shared: " + by_minute(lambda s: s[2][1]))
    abandoned = verify_all - ok
    print(f"HTTP errors {res['errors']}; VerifySeller answered {verify_all:.0f}, OK {ok:.0f}, abandoned by h2load at "
          f"its stop {abandoned:.0f} (bound {a.connections * a.streams}); decisions {decisions:.0f}, records written "
          f"{written:.0f}, rows in database {rows} (and {markers} lost-records markers), lost {lost:.0f}, quarantined "
          f"{quarantined:.0f}; decisions that "
          f"waited for room in the record queue {waited:.0f}")
    print(f"RSS first minute {mib(first)} MiB, after warm-up (minute 4) {mib(warm)} MiB, last minute {mib(last)} MiB; "
          f"drift {drift * 100:+.1f}% from the first minute, {warm_drift * 100:+.1f}% after warm-up")
    not_ok = {}
    for k, v in sorted(after.items()):
        if k.startswith('safeguard_rpc_requests_total{method="VerifySeller"') and 'code="OK"' not in k:
            not_ok[re.search(r'code="([^"]+)"', k).group(1)] = v - before.get(k, 0)
            print(f"not OK: {k} {v - before.get(k, 0):.0f}")
    failures = []
    cut_at_stop = all(code in ("CANCELLED", "UNKNOWN") or n == 0 for code, n in not_ok.items())
    if res["errors"] or ok == 0 or not cut_at_stop or abandoned > a.connections * a.streams:
        failures.append("errors")
    if abs(drift) > 0.05:
        failures.append("RSS not flat")
    if not (written == rows == ok) or quarantined or decisions != written + lost or lost > abandoned:
        failures.append("decisions not all recorded")
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit("soak FAILED: " + ", ".join(failures))
    print("soak passed")


if __name__ == "__main__":
    main()
