#!/usr/bin/env python3
"""RSS at health SERVING, per seller above an empty registry, on SQLite and on PostgreSQL.

    python3 benches/startup_rss.py [--sellers 180000] [--database-url postgres://…]
                                   [--binary target/release/safeguard] [--env KEY=VALUE …]

Generates the sellers, imports them (into a fresh SQLite file, or into the PostgreSQL database
given, which must be empty), starts `safeguard serve` on an empty registry and on the loaded one,
and on the loaded one again (a restart, which starts from the snapshot file the first start saved
beside the checkpoints), and prints, once each answers health SERVING: the time to SERVING, VmRSS split into anonymous and
file-backed memory (RssAnon, RssFile: memory-mapped database pages would show there), the peak
(VmHWM), and the bytes per seller above the empty registry. `--env` adds settings to both servers,
to try a hypothesis (e.g. `--env MIMALLOC_PURGE_DELAY=0` or
`--env SAFEGUARD__DATABASE__MAX_CONNECTIONS=2`).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_vs_echo as bench  # noqa: E402


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def serve(binary, env, db_url, name):
    port = bench.free_port()
    server = bench.Server(name, [binary, "serve"], {**bench.safeguard_env(None, db_url, port, "off"), **env}, port,
                          bench.health_ok(binary, port))
    # Let the allocator settle (mimalloc purges freed memory after a delay).
    time.sleep(2)
    s = status(server.proc.pid)
    s["startup"] = server.startup
    server.stop()
    return s


def mib(b):
    return f"{b / 1048576:.0f} MiB"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sellers", type=int, default=180_000)
    p.add_argument("--database-url", help="an empty PostgreSQL database to load instead of SQLite")
    p.add_argument("--binary", help="a built safeguard binary (default: build the release one)")
    p.add_argument("--loaded", help="a database URL already holding the sellers: skip generate and import")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for both servers")
    a = p.parse_args()
    binary = a.binary or bench.build()[0]
    env = dict(kv.split("=", 1) for kv in a.env)
    work = tempfile.mkdtemp(prefix="sg-rss-")
    data = os.path.join(work, "sellers.csv")
    db_url = a.loaded or a.database_url or f"sqlite://{work}/safeguard.db?mode=rwc"
    if not a.loaded:
        bench.run([binary, "generate", "--sellers", str(a.sellers), "--output", data])
        t = time.monotonic()
        bench.run([binary, "--database-url", db_url, "import", data],
                  env=bench.safeguard_env(work, db_url, 0, "off"))
        print(f"import of {a.sellers} sellers into {'PostgreSQL' if a.database_url else 'SQLite'}: "
              f"{time.monotonic() - t:.1f} s", flush=True)
    # Apart from the loaded database: the signed checkpoint is kept beside the database file, and
    # an empty log under the loaded one's checkpoint would (rightly) halt as truncated.
    os.makedirs(os.path.join(work, "empty"))
    empty = serve(binary, env, f"sqlite://{work}/empty/empty.db?mode=rwc", "empty")
    loaded = serve(binary, env, db_url, "loaded")
    # The first start saved the snapshot (on a blocking task, after its start-up checkpoint); with
    # SQLite the file is beside the database, so wait for it rather than trust the settling time.
    saved = os.path.join(work, "checkpoints", "registry", "snapshot.bin")
    if db_url.startswith("sqlite") and not a.loaded:
        for _ in range(100):
            if os.path.exists(saved):
                break
            time.sleep(0.1)
        print(f"saved snapshot: {os.path.getsize(saved) / 1048576:.1f} MiB" if os.path.exists(saved)
              else "no saved snapshot (snapshot.saved_file off?)", flush=True)
    restart = serve(binary, env, db_url, "restart")
    for name, s in (("empty", empty), ("loaded", loaded), ("restart", restart)):
        print(f"{name:7}: SERVING after {s['startup']:.2f} s · VmRSS {mib(s['VmRSS'])} (anon {mib(s['RssAnon'])}, "
              f"file {mib(s['RssFile'])}) · VmHWM {mib(s['VmHWM'])}")
    per = (loaded["VmRSS"] - empty["VmRSS"]) / a.sellers
    anon = (loaded["RssAnon"] - empty["RssAnon"]) / a.sellers
    print(f"RSS per seller above an empty registry: {per:.0f} B (anonymous {anon:.0f} B); env {env or '-'}")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
