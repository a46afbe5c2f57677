#!/usr/bin/env python3
"""VerifySeller against a tonic echo server, side by side, with h2load as the external load generator.

Every number is reported as a ratio against the echo baseline measured in the same run, in rounds
that alternate the two servers, because the machine is shared and noisy.

    python3 benches/grpc_vs_echo.py [--sellers 180000] [--rounds 3] [--seconds 10]
                                    [--connections 16] [--streams 32] [--records all|off]

Needs h2load (Debian: nghttp2-client). Builds the release binary and the bench helper itself.
What it measures, per server and scenario (ALLOW, DENY with CLAUSE_MISSING, 4,096 sellers in turn):
req/s, p50/p99 latency, server CPU per request (utime+stime from /proc), RSS; then unloaded p50 (one
connection, one request in flight), RSS per seller above an empty registry, and the time from start
to health SERVING.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = os.path.join(ROOT, "tests", "fixtures", "keys")
PATH = "/safeguard.v1.VerificationService/VerifySeller"
TICKS = os.sysconf("SC_CLK_TCK")
# Seconds more to wait before RSS is read again: the start-up's background work (the check of the
# whole history, the console's recipient register) is done by then, and what it read is freed.
SETTLE = 11


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build():
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "safeguard"], cwd=ROOT, check=True)
    out = run(["cargo", "bench", "--locked", "--bench", "grpc_vs_echo", "--no-run", "--message-format=json"], cwd=ROOT)
    helper = None
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "grpc_vs_echo" and msg.get("executable"):
            helper = msg["executable"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "safeguard"), helper


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    def __init__(self, name, cmd, env, port, health=None):
        self.name, self.port = name, port
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(600):
            if health and health() or not health and self.listening():
                break
            if self.proc.poll() is not None:
                sys.exit(f"{name} exited: {self.proc.stderr.read()}")
            time.sleep(0.05)
        else:
            sys.exit(f"{name} did not come up")
        self.startup = time.monotonic() - started

    def listening(self):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def percentiles(log):
    """p50 and p99 in microseconds from an h2load --log-file (time, status, duration µs)."""
    lat = []
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "200":
                lat.append(int(parts[2]))
    lat.sort()
    if not lat:
        return 0, 0
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def h2load(server, body, token, args, connections, streams, seconds, count=None):
    log = tempfile.mktemp(suffix=".log")
    cmd = ["h2load", "-c", str(connections), "-m", str(streams), "-d", body, "--log-file", log,
           "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", f"authorization: Bearer {token}"]
    cmd += ["-n", str(count)] if count else ["-D", str(seconds), "--warm-up-time", "1"]
    cpu0 = cpu_seconds(server.proc.pid)
    out = run(cmd + [server.url() + PATH])
    cpu = cpu_seconds(server.proc.pid) - cpu0
    done = errors = 0
    rps = 0.0
    for line in out.splitlines():
        if line.startswith("finished in"):
            rps = float(line.split(",")[1].split()[0])
        if line.startswith("requests:"):
            words = line.replace(",", "").split()
            done, errors = int(words[words.index("succeeded") - 1]), int(words[words.index("failed") - 1]) + int(words[words.index("errored") - 1])
    p50, p99 = percentiles(log)
    os.unlink(log)
    return {"rps": rps, "p50": p50, "p99": p99, "cpu_us": cpu * 1e6 / max(done, 1), "errors": errors,
            "rss": rss_bytes(server.proc.pid)}


def cycle(helper, server, token, bodies, connections, streams, seconds):
    cpu0 = cpu_seconds(server.proc.pid)
    out = run([helper, "cycle", "--addr", server.url(), "--token", token, "--dir", bodies,
               "--connections", str(connections), "--streams", str(streams), "--seconds", str(seconds)])
    cpu = cpu_seconds(server.proc.pid) - cpu0
    rps, p50, p99, errors = out.split()
    done = float(rps) * seconds
    return {"rps": float(rps), "p50": int(p50), "p99": int(p99), "cpu_us": cpu * 1e6 / max(done, 1),
            "errors": int(errors), "rss": rss_bytes(server.proc.pid)}


def health_ok(binary, port):
    return lambda: subprocess.run([binary, "healthcheck", "--addr", f"http://127.0.0.1:{port}"],
                                  capture_output=True).returncode == 0


def safeguard_env(work, db_url, port, records):
    env = dict(os.environ)
    env.update({
        "SAFEGUARD__DATABASE__URL": db_url,
        "SAFEGUARD__SERVER__LISTEN_ADDR": f"127.0.0.1:{port}",
        "SAFEGUARD__METRICS__LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "SAFEGUARD__CONSOLE__LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "SAFEGUARD__AUTH__ES256_PUBLIC_KEY_FILE": os.path.join(KEYS, "es256.pub"),
        "SAFEGUARD__AUTH__AUDIENCE": "safeguard",
        "SAFEGUARD__DECISIONS__MODE": records,
        "SAFEGUARD__LOG__LEVEL": "warn",
    })
    return env


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sellers", type=int, default=180_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--streams", type=int, default=32)
    p.add_argument("--records", default="all")
    p.add_argument("--database-url", help="PostgreSQL URL to load the registry into instead of SQLite")
    a = p.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load is missing: apt-get install nghttp2-client")
    binary, helper = build()
    work = tempfile.mkdtemp(prefix="sg-bench-")
    data = os.path.join(work, "sellers.csv")
    run([binary, "generate", "--sellers", str(a.sellers), "--output", data])
    db_url = a.database_url or f"sqlite://{work}/safeguard.db?mode=rwc"
    t = time.monotonic()
    run([binary, "--database-url", db_url, "import", data], env=safeguard_env(work, db_url, 0, "off"))
    print(f"import of {a.sellers} sellers: {time.monotonic() - t:.1f} s")
    token = run([helper, "token", "--key", os.path.join(KEYS, "es256.key"), "--audience", "safeguard"]).strip()

    empty_port = free_port()
    # A directory of its own: SQLite's default signing key and checkpoints sit beside the database,
    # and the loaded registry's checkpoints must not be taken for this one's (it would halt).
    os.makedirs(os.path.join(work, "empty"))
    empty_db = f"sqlite://{work}/empty/empty.db?mode=rwc"
    empty = Server("safeguard (empty)", [binary, "serve"], safeguard_env(work, empty_db, empty_port, a.records),
                   empty_port, health_ok(binary, empty_port))
    time.sleep(1)
    empty_rss = rss_bytes(empty.proc.pid)
    time.sleep(SETTLE)
    empty_settled = rss_bytes(empty.proc.pid)
    empty.stop()

    sg_port, echo_port = free_port(), free_port()
    sg = Server("safeguard", [binary, "serve"], safeguard_env(work, db_url, sg_port, a.records), sg_port,
                health_ok(binary, sg_port))
    time.sleep(1)
    loaded_rss = rss_bytes(sg.proc.pid)
    time.sleep(SETTLE)
    loaded_settled = rss_bytes(sg.proc.pid)
    echo = Server("echo", [helper, "echo", "--listen", f"127.0.0.1:{echo_port}"], dict(os.environ), echo_port)
    bodies = os.path.join(work, "bodies")
    run([helper, "bodies", "--addr", sg.url(), "--token", token, "--out", bodies])

    results = {}
    scenarios = ["allow", "deny", "mix"]
    for r in range(a.rounds):
        for scenario in scenarios:
            for server in (echo, sg):
                if scenario == "mix":
                    res = cycle(helper, server, token, bodies, a.connections, a.streams, a.seconds)
                else:
                    res = h2load(server, os.path.join(bodies, f"{scenario}.bin"), token, a, a.connections,
                                 a.streams, a.seconds)
                results.setdefault((server.name, scenario), []).append(res)
                print(f"round {r + 1} {scenario:5} {server.name:9} {res['rps']:9.0f} req/s  p50 {res['p50']} µs  "
                      f"p99 {res['p99']} µs  cpu {res['cpu_us']:.1f} µs/req  errors {res['errors']}", flush=True)
    unloaded = {}
    for server in (echo, sg):
        res = [h2load(server, os.path.join(bodies, "allow.bin"), token, a, 1, 1, 0, count=5000) for _ in range(a.rounds)]
        unloaded[server.name] = statistics.median(x["p50"] for x in res)

    med = lambda name, scenario, key: statistics.median(x[key] for x in results[(name, scenario)])
    print("\n| measure | echo | safeguard | ratio |\n|---|---|---|---|")
    for scenario in scenarios:
        e, s = med("echo", scenario, "rps"), med("safeguard", scenario, "rps")
        print(f"| req/s, {scenario} | {e:.0f} | {s:.0f} | {s / e:.2f} |")
    for scenario in scenarios:
        e, s = med("echo", scenario, "cpu_us"), med("safeguard", scenario, "cpu_us")
        print(f"| server CPU µs/request, {scenario} | {e:.1f} | {s:.1f} | {s / e:.2f} |")
    for scenario in scenarios:
        for q in ("p50", "p99"):
            e, s = med("echo", scenario, q), med("safeguard", scenario, q)
            print(f"| {q} µs under load, {scenario} | {e:.0f} | {s:.0f} | {s / max(e, 1):.2f} |")
    e, s = unloaded["echo"], unloaded["safeguard"]
    print(f"| unloaded p50 µs (1 connection, 1 in flight) | {e:.0f} | {s:.0f} | {s / max(e, 1):.2f} |")
    print(f"| start-up until SERVING, s | {echo.startup:.2f} | {sg.startup:.2f} | – |")
    print(f"| RSS per seller above an empty registry, 1 s after SERVING, B | – | {(loaded_rss - empty_rss) / a.sellers:.0f} | – |")
    print(f"| the same {1 + SETTLE} s after SERVING (start-up's background work done), B | – | "
          f"{(loaded_settled - empty_settled) / a.sellers:.0f} | – |")
    errors = sum(x["errors"] for v in results.values() for x in v)
    print(f"\nerrors: {errors}; records: {a.records}; {a.rounds} rounds of {a.seconds} s, "
          f"{a.connections} connections × {a.streams} streams, ES256 token")
    sg.stop()
    echo.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
