#!/usr/bin/env python3
"""Signing never blocks VerifySeller: the same build with checkpoints on and off, side by side.

    python3 benches/signing.py [--sellers 180000] [--rounds 3] [--seconds 10]
                               [--connections 16] [--streams 32] [--interval 1]

Two servers of the same build over copies of the same registry, one with `audit.checkpoints` on
(signing both logs every `--interval` seconds; decision records are `all`, so every signature covers
the records written since the last) and one with it off, and the
tonic echo server as the floor. Rounds alternate the three. Reports req/s, p50/p99 and server CPU
per request for each, and the ratios on/off and on/echo. If signing ever held up a decision, it
would show as a lower req/s or a higher p99 on the server that signs.

It reuses the build, server and load helpers of benches/grpc_vs_echo.py. Needs h2load (Debian:
nghttp2-client).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_vs_echo as bench  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sellers", type=int, default=180_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--streams", type=int, default=32)
    p.add_argument("--interval", type=int, default=1, help="checkpoint interval (s) of the signing server")
    a = p.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load is missing: apt-get install nghttp2-client")
    binary, helper = bench.build()
    work = tempfile.mkdtemp(prefix="sg-signing-")
    data = os.path.join(work, "sellers.csv")
    bench.run([binary, "generate", "--sellers", str(a.sellers), "--output", data])
    on_db = f"sqlite://{work}/on.db?mode=rwc"
    bench.run([binary, "--database-url", on_db, "import", data], env=bench.safeguard_env(work, on_db, 0, "off"))
    shutil.copy(os.path.join(work, "on.db"), os.path.join(work, "off.db"))
    off_db = f"sqlite://{work}/off.db?mode=rwc"
    token = bench.run([helper, "token", "--key", os.path.join(bench.KEYS, "es256.key"), "--audience", "safeguard"]).strip()

    servers = []
    for name, db, checkpoints in (("signing", on_db, "true"), ("off", off_db, "false")):
        port = bench.free_port()
        env = bench.safeguard_env(work, db, port, "all")
        env["SAFEGUARD__AUDIT__CHECKPOINTS"] = checkpoints
        env["SAFEGUARD__AUDIT__CHECKPOINT_INTERVAL_S"] = str(a.interval)
        # The key and checkpoint directory are SQLite's defaults beside the database: the ones the
        # import signed its checkpoint with, which the signing server must extend.
        servers.append(bench.Server(name, [binary, "serve"], env, port, bench.health_ok(binary, port)))
    echo_port = bench.free_port()
    echo = bench.Server("echo", [helper, "echo", "--listen", f"127.0.0.1:{echo_port}"], dict(os.environ), echo_port)
    bodies = os.path.join(work, "bodies")
    bench.run([helper, "bodies", "--addr", servers[0].url(), "--token", token, "--out", bodies])
    allow = os.path.join(bodies, "allow.bin")

    results = {}
    for r in range(a.rounds):
        for server in (echo, *servers):
            res = bench.h2load(server, allow, token, a, a.connections, a.streams, a.seconds)
            results.setdefault(server.name, []).append(res)
            print(f"round {r + 1} {server.name:8} {res['rps']:9.0f} req/s  p50 {res['p50']} µs  p99 {res['p99']} µs  "
                  f"cpu {res['cpu_us']:.1f} µs/req  errors {res['errors']}", flush=True)
    signed = len([f for f in os.listdir(os.path.join(work, "checkpoints", "decisions")) if f[0].isdigit()])
    med = lambda name, key: statistics.median(x[key] for x in results[name])
    print("\n| measure | echo | checkpoints off | signing every %d s | signing / off | signing / echo |" % a.interval)
    print("|---|---|---|---|---|---|")
    for key, label in (("rps", "req/s, ALLOW"), ("p50", "p50 µs"), ("p99", "p99 µs"), ("cpu_us", "server CPU µs/request")):
        e, off, on = med("echo", key), med("off", key), med("signing", key)
        print(f"| {label} | {e:.1f} | {off:.1f} | {on:.1f} | {on / max(off, 1e-9):.2f} | {on / max(e, 1e-9):.2f} |")
    errors = sum(x["errors"] for v in results.values() for x in v)
    print(f"\nerrors: {errors}; decision-log checkpoints signed during the run: {signed}; records all; "
          f"{a.rounds} rounds of {a.seconds} s, {a.connections} connections × {a.streams} streams, ES256 token")
    for server in (*servers, echo):
        server.stop()
    time.sleep(0.2)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
