#!/usr/bin/env python3
"""Drain measurement: a reconnecting client population against two gateways.

Started by bench/drain-run.sh (which brings up Redis, PostgreSQL, sluice-broker and
sluice-auth); this script starts the two sluice-gateway processes itself, so that the
order is fixed:

  1. gateway A (SLUICE_DRAIN_SECONDS=--drain-seconds) alone on the port;
  2. N clients (SSE and WebSocket, one distinct token each) connect to it, spread over
     --procs client processes (asyncio, standard library only);
  3. gateway B (the survivor) starts on the same port (SLUICE_REUSE_PORT=true) and its
     /readyz answers 200;
  4. after --hold seconds, SIGTERM to A. A closes its listener, so every reconnect lands
     on B. Each client reconnects immediately when its stream ends (SSE last chunk or
     EOF, WebSocket close frame, reset), and retries every --retry-ms after a failed
     attempt (refused, timeout, non-200/101 answer);
  5. for --after seconds after the SIGTERM, a sampler reads once a second the auth
     tier's /metrics (sluice_auth_queries_total{query="token"}, sluice_auth_cache_*),
     both gateways' /metrics, and the CPU time of B, auth and PostgreSQL from /proc.

Clients record the wall-clock time of every disconnect and every successful reconnect;
the report buckets them per second after the SIGTERM. The result is printed as a table
and as one line `DRAIN_RESULT {json}`; --json-out writes the full per-second series.

Only loopback. Everything is bounded in time: clients stop at the end of the run, the
gateways are stopped (SIGTERM, then SIGKILL after 10 s) on exit.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import math
import multiprocessing as mp
import os
import random
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.request

IP_BIND_ADDRESS_NO_PORT = 24
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --------------------------------------------------------------------------- client


class Worker:
    """One process: an asyncio loop holding its share of the clients."""

    def __init__(self, wid, args, plan, queue, control):
        self.wid = wid
        self.args = args
        self.plan = plan  # list of (token, transport)
        self.queue = queue
        self.control = control
        self.connected = 0
        self.ever_connected = 0
        self.disconnects = []  # (t, reason)
        self.reconnects = []  # (t, seconds since the disconnect)
        self.failures = []  # (t, reason)
        self.initial_fail = 0
        self.stopping = False
        self.sources = [f"127.0.0.{2 + i}" for i in range(args.source_pool)]

    async def open(self, token, transport, source):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
            loop = asyncio.get_running_loop()
            await loop.sock_connect(sock, (self.args.host, self.args.port))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
        if transport == "sse":
            req = (f"GET /api/v1/streaming/{self.args.stream} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n")
            key = None
        else:
            key = base64.b64encode(os.urandom(16)).decode()
            req = (f"GET /api/v1/streaming?stream={self.args.stream} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n")
        writer.write(req.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        want = 200 if transport == "sse" else 101
        if code != want:
            writer.close()
            raise ConnectionError(f"HTTP {code}")
        if key is not None:
            accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest())
            if accept not in head:
                writer.close()
                raise ConnectionError("bad Sec-WebSocket-Accept")
        return reader, writer

    async def read_sse(self, reader):
        """Until the stream ends; returns why."""
        while True:
            line = await reader.readline()
            if not line:
                return "eof"
            size = int(line.strip().split(b";")[0] or b"0", 16)
            if size == 0:
                return "sse-end"
            await reader.readexactly(size + 2)

    async def read_ws(self, reader, writer):
        while True:
            b = await reader.readexactly(2)
            opcode = b[0] & 0x0F
            n = b[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await reader.readexactly(8))[0]
            if b[1] & 0x80:
                await reader.readexactly(4)  # servers do not mask; tolerate it
            payload = await reader.readexactly(n) if n else b""
            if opcode == 9:  # ping -> pong
                writer.write(ws_frame(0xA, payload))
            elif opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                try:
                    writer.write(ws_frame(0x8, payload[:2]))
                except Exception:
                    pass
                return f"ws-{code}"

    async def client(self, index, token, transport, start_at):
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, start_at - loop.time()))
        source = self.sources[index % len(self.sources)]
        down_since = None  # time of the disconnect being recovered from
        first = True
        while not self.stopping:
            try:
                reader, writer = await asyncio.wait_for(
                    self.open(token, transport, source), self.args.connect_timeout)
            except Exception as e:  # refused, timeout, HTTP error
                reason = type(e).__name__ if not str(e) else str(e)[:60]
                if first:
                    self.initial_fail += 1
                else:
                    self.failures.append((time.time(), reason))
                await asyncio.sleep(self.args.retry_ms / 1000)
                continue
            if self.stopping:
                writer.close()
                break
            now = time.time()
            self.connected += 1
            if first:
                self.ever_connected += 1
                first = False
            elif down_since is not None:
                self.reconnects.append((now, now - down_since))
            try:
                if transport == "sse":
                    reason = await self.read_sse(reader)
                else:
                    reason = await self.read_ws(reader, writer)
            except asyncio.CancelledError:
                self.connected -= 1
                writer.close()
                raise
            except asyncio.IncompleteReadError:
                reason = "eof"
            except Exception as e:
                reason = type(e).__name__
            self.connected -= 1
            down_since = time.time()
            if not self.stopping:
                self.disconnects.append((down_since, reason))
            writer.close()

    async def run(self):
        loop = asyncio.get_running_loop()
        rate = self.args.connect_rate / self.args.procs
        t0 = loop.time()
        tasks = [asyncio.ensure_future(self.client(i, tok, tr, t0 + i / rate))
                 for i, (tok, tr) in enumerate(self.plan)]
        # Report every 250 ms; stop when the coordinator says so (or at the hard limit).
        hard_end = t0 + self.args.max_seconds
        while loop.time() < hard_end:
            self.queue.put(("status", self.wid, self.connected, self.ever_connected, len(self.disconnects)))
            if self.control.poll():
                self.control.recv()
                break
            await asyncio.sleep(0.25)
        self.stopping = True
        still = self.connected
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks, timeout=5)
        self.queue.put(("final", self.wid, {
            "connected_at_end": still,
            "ever_connected": self.ever_connected,
            "initial_fail": self.initial_fail,
            "disconnects": self.disconnects,
            "reconnects": self.reconnects,
            "failures": self.failures,
            "cpu_seconds": sum(os.times()[:2]),
        }))


def ws_frame(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode, 0x80 | n])  # control frames only (<126 bytes)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def worker_main(wid, args, plan, queue, control):
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except Exception:
        pass
    try:  # die with the coordinator
        import ctypes
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(Worker(wid, args, plan, queue, control).run())


# ---------------------------------------------------------------------- sampling


def scrape(url):
    try:
        with urllib.request.urlopen(url, timeout=0.8) as r:
            text = r.read().decode()
    except Exception:
        return None
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def metric(sample, name, **labels):
    """Sum of the series of `name` whose labels include `labels`."""
    if sample is None:
        return None
    total = 0.0
    for key, value in sample.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def listen_overflows():
    """TcpExt ListenOverflows + ListenDrops (host-wide: SYNs/ACKs dropped on a full accept queue)."""
    try:
        with open("/proc/net/netstat") as f:
            lines = [l.split() for l in f if l.startswith("TcpExt:")]
        fields = dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))
        return fields.get("ListenOverflows", 0) + fields.get("ListenDrops", 0)
    except (OSError, IndexError, ValueError):
        return None


def children_of(ppid):
    pids = [ppid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid:
                pids.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return pids


# -------------------------------------------------------------------- coordinator


def wait_ready(url, seconds):
    end = time.time() + seconds
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=0.5) as r:
                if r.status == 200:
                    return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


def start_gateway(args, name, admin_port, drain_seconds, logdir):
    env = dict(os.environ)
    env.update({
        "PORT": str(args.port), "BIND": "127.0.0.1", "SLUICE_REUSE_PORT": "true",
        "SLUICE_GATEWAY_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
        "SLUICE_DRAIN_SECONDS": str(drain_seconds),
    })
    log = open(os.path.join(logdir, f"{name}.log"), "w")
    return subprocess.Popen([args.gateway_bin], env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_proc(p):
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(math.ceil(q * len(values))) - 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway-bin", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--admin-a", type=int, required=True, help="admin port of the drained gateway")
    ap.add_argument("--admin-b", type=int, required=True, help="admin port of the survivor")
    ap.add_argument("--auth-admin", required=True, help="host:port of sluice-auth's admin HTTP")
    ap.add_argument("--auth-pid", type=int, default=0)
    ap.add_argument("--pg-pid", type=int, default=0, help="postmaster pid (CPU of it and its children)")
    ap.add_argument("--tokens-file", required=True)
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--ws-share", type=float, default=0.5)
    ap.add_argument("--stream", default="user")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--connect-rate", type=float, default=1000)
    ap.add_argument("--connect-timeout", type=float, default=10)
    ap.add_argument("--retry-ms", type=float, default=100)
    ap.add_argument("--source-pool", type=int, default=64)
    ap.add_argument("--drain-seconds", type=int, default=20)
    ap.add_argument("--hold", type=float, default=35,
                    help="seconds between the last connect and the SIGTERM (35 > the 30 s token cache TTL)")
    ap.add_argument("--after", type=float, default=0,
                    help="at most this many seconds observed after the SIGTERM (default drain + 45); the run ends"
                         " earlier, 5 s after every client is back and gateway A has exited")
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--logdir", default=".")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "localhost"):
        sys.exit("drain_reconnect.py: loopback only")
    after = args.after or args.drain_seconds + 45
    started = time.time()

    with open(args.tokens_file) as f:
        tokens = [line.split()[0] for line in f if line.strip()]
    if len(tokens) < args.clients:
        sys.exit(f"drain_reconnect.py: {len(tokens)} tokens for {args.clients} clients")
    rnd = random.Random(1)
    n_ws = int(round(args.clients * args.ws_share))
    transports = ["ws"] * n_ws + ["sse"] * (args.clients - n_ws)
    rnd.shuffle(transports)
    plan = list(zip(tokens[:args.clients], transports))

    gw_a = gw_b = None
    procs, controls = [], []
    try:
        gw_a = start_gateway(args, "gateway-a", args.admin_a, args.drain_seconds, args.logdir)
        if not wait_ready(f"http://127.0.0.1:{args.admin_a}/readyz", 30):
            sys.exit("gateway A did not become ready")

        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        for w in range(args.procs):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(w, args, plan[w::args.procs], queue, child), daemon=True)
            p.start()
            procs.append(p)
            controls.append(parent)

        status = {}
        finals = {}

        def pump(timeout):
            end = time.time() + timeout
            while True:
                left = end - time.time()
                if left <= 0:
                    return
                try:
                    msg = queue.get(timeout=min(left, 0.25))
                except Exception:
                    continue
                if msg[0] == "status":
                    status[msg[1]] = msg[2:]
                else:
                    finals[msg[1]] = msg[2]

        def connected():
            return sum(s[0] for s in status.values())

        # 2. connect everyone to A
        deadline = time.time() + args.clients / args.connect_rate + 60
        while time.time() < deadline and connected() < args.clients:
            pump(0.5)
        held_a = connected()
        print(f"drain_reconnect: {held_a}/{args.clients} clients connected to gateway A", file=sys.stderr)

        # 3. the survivor
        gw_b = start_gateway(args, "gateway-b", args.admin_b, args.drain_seconds, args.logdir)
        if not wait_ready(f"http://127.0.0.1:{args.admin_b}/readyz", 30):
            sys.exit("gateway B did not become ready")

        # 4. hold, then SIGTERM A, sampling every second from 3 s before it
        pump(max(0.0, args.hold - 3))
        auth_url = f"http://{args.auth_admin}/metrics"
        a_url = f"http://127.0.0.1:{args.admin_a}/metrics"
        b_url = f"http://127.0.0.1:{args.admin_b}/metrics"
        pg_pids = children_of(args.pg_pid) if args.pg_pid else []
        samples = []

        def sample():
            auth = scrape(auth_url)
            a = scrape(a_url)
            b = scrape(b_url)
            samples.append({
                "t": time.time(),
                "token_queries": metric(auth, "sluice_auth_queries_total", query="token"),
                "all_queries": metric(auth, "sluice_auth_queries_total"),
                "token_cache_hits": metric(auth, "sluice_auth_cache_hits_total", cache="token"),
                "token_cache_misses": metric(auth, "sluice_auth_cache_misses_total", cache="token"),
                "cache_hits": metric(auth, "sluice_auth_cache_hits_total"),
                "cache_misses": metric(auth, "sluice_auth_cache_misses_total"),
                "a_clients": metric(a, "connected_clients"),
                "a_drained": metric(a, "sluice_drained_clients_total"),
                "a_draining": metric(a, "sluice_gateway_draining"),
                "b_clients": metric(b, "connected_clients"),
                "cpu_b": cpu_seconds([gw_b.pid]),
                "cpu_auth": cpu_seconds([args.auth_pid]) if args.auth_pid else None,
                "cpu_pg": cpu_seconds(pg_pids) if pg_pids else None,
                "clients_connected": connected(),
                "listen_drops": listen_overflows(),
            })

        next_t = time.time()
        for _ in range(3):
            sample()
            next_t += 1
            pump(max(0.0, next_t - time.time()))
        a_before = samples[-1]["a_clients"]
        t_term = time.time()
        gw_a.send_signal(signal.SIGTERM)
        a_exit_at = None
        back_at = None
        next_t = t_term
        while time.time() < t_term + after:
            sample()
            if a_exit_at is None and gw_a.poll() is not None:
                a_exit_at = time.time()
            if (a_exit_at is not None and time.time() > t_term + args.drain_seconds + 5
                    and connected() >= args.clients):
                back_at = back_at or time.time()
                if time.time() > back_at + 5:
                    break  # everyone reconnected 5 s ago
            next_t += 1
            pump(max(0.0, next_t - time.time()))
        if a_exit_at is None and gw_a.poll() is not None:
            a_exit_at = time.time()

        # 5. stop the clients, collect
        for c in controls:
            c.send("stop")
        end = time.time() + 30
        while len(finals) < len(procs) and time.time() < end:
            pump(0.5)
        if len(finals) < len(procs):
            sys.exit("drain_reconnect.py: a client process did not report")
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        stop_proc(gw_b)
        stop_proc(gw_a)

    # ------------------------------------------------------------------ report
    disconnects = [t for f in finals.values() for t, _ in f["disconnects"]]
    reasons = {}
    for f in finals.values():
        for _, r in f["disconnects"]:
            reasons[r] = reasons.get(r, 0) + 1
    reconnects = [t for f in finals.values() for t, _ in f["reconnects"]]
    gaps = [g for f in finals.values() for _, g in f["reconnects"]]
    failures = [t for f in finals.values() for t, _ in f["failures"]]
    fail_reasons = {}
    for f in finals.values():
        for _, r in f["failures"]:
            fail_reasons[r] = fail_reasons.get(r, 0) + 1
    at_end = sum(f["connected_at_end"] for f in finals.values())
    n_seconds = max(1, len(samples) - 3)

    def per_second(ts):
        counts = [0] * n_seconds
        for t in ts:
            k = int(t - t_term)
            if 0 <= k < n_seconds:
                counts[k] += 1
        return counts

    d_ps, r_ps, f_ps = per_second(disconnects), per_second(reconnects), per_second(failures)

    # 100 ms buckets for the peak at finer resolution
    def peak_100ms(ts):
        if not ts:
            return 0
        counts = {}
        for t in ts:
            k = int((t - t_term) * 10)
            counts[k] = counts.get(k, 0) + 1
        return max(counts.values()) * 10

    # metrics: per-second deltas, aligned to the SIGTERM
    rows = []
    post = [s for s in samples if s["t"] >= t_term - 0.01]
    prev = [s for s in samples if s["t"] < t_term - 0.01][-1]
    for s in post:
        dt = s["t"] - prev["t"]

        def rate(key):
            if s[key] is None or prev[key] is None or dt <= 0:
                return None
            return (s[key] - prev[key]) / dt

        rows.append({
            "t": round(s["t"] - t_term, 2),
            "token_queries_per_s": rate("token_queries"),
            "token_cache_hits_per_s": rate("token_cache_hits"),
            "token_cache_misses_per_s": rate("token_cache_misses"),
            "all_queries_per_s": rate("all_queries"),
            "a_drained_per_s": rate("a_drained"),
            "listen_drops_per_s": rate("listen_drops"),
            "b_gain_per_s": rate("b_clients"),
            "cpu_b": rate("cpu_b"),
            "cpu_auth": rate("cpu_auth"),
            "cpu_pg": rate("cpu_pg"),
            "a_clients": s["a_clients"],
            "b_clients": s["b_clients"],
        })
        prev = s
    first_s, last_s = samples[2], samples[-1]  # just before the SIGTERM, and the end

    def delta(key):
        if first_s[key] is None or last_s[key] is None:
            return None
        return last_s[key] - first_s[key]

    # mean over the seconds in which reconnects happened (first to last)
    nz = [i for i, v in enumerate(r_ps) if v]
    mean_active = (sum(r_ps) / (nz[-1] - nz[0] + 1)) if nz else 0
    tq = [r["token_queries_per_s"] for r in rows[1:] if r["token_queries_per_s"] is not None]
    result = {
        "clients": args.clients,
        "ws": n_ws,
        "sse": args.clients - n_ws,
        "drain_seconds": args.drain_seconds,
        "hold_seconds": args.hold,
        "held_by_a_before_sigterm": a_before,
        "clients_connected_before_sigterm": held_a,
        "sigterm_unix_time": round(t_term, 3),
        "listen_drops_total": delta("listen_drops"),
        "a_exit_after_s": round(a_exit_at - t_term, 2) if a_exit_at else None,
        "a_exit_code": gw_a.returncode,
        "disconnects": len(disconnects),
        "disconnect_reasons": reasons,
        "first_disconnect_s": round(min(disconnects) - t_term, 3) if disconnects else None,
        "last_disconnect_s": round(max(disconnects) - t_term, 3) if disconnects else None,
        "reconnects": len(reconnects),
        "reconnect_peak_per_s": max(r_ps) if r_ps else 0,
        "reconnect_peak_per_100ms_scaled": peak_100ms(reconnects),
        "reconnect_mean_per_s_active": round(mean_active, 1),
        "reconnect_gap_ms": {"p50": round(1000 * percentile(gaps, 0.5), 1) if gaps else None,
                             "p99": round(1000 * percentile(gaps, 0.99), 1) if gaps else None,
                             "max": round(1000 * max(gaps), 1) if gaps else None},
        "last_reconnect_s": round(max(reconnects) - t_term, 3) if reconnects else None,
        "failed_attempts": len(failures),
        "failed_attempt_reasons": fail_reasons,
        "clients_connected_at_end": at_end,
        "clients_not_reconnected": args.clients - at_end,
        "survivor_clients_at_end": last_s["b_clients"],
        # server side: growth of the survivor's connected_clients gauge (the client-side
        # counts lag behind it when the client processes are saturated, as in a storm)
        "survivor_gain_peak_per_s": round(max((r["b_gain_per_s"] or 0) for r in rows), 1) if rows else None,
        "token_queries_total": delta("token_queries"),
        "token_queries_peak_per_s": round(max(tq), 1) if tq else None,
        "token_cache_hits_total": delta("token_cache_hits"),
        "token_cache_misses_total": delta("token_cache_misses"),
        "all_auth_queries_total": delta("all_queries"),
        "survivor_cpu_seconds": delta("cpu_b"),
        "survivor_cpu_peak": round(max((r["cpu_b"] or 0) for r in rows), 2) if rows else None,
        "auth_cpu_seconds": delta("cpu_auth"),
        "pg_cpu_seconds": delta("cpu_pg"),
        "client_cpu_seconds": round(sum(f["cpu_seconds"] for f in finals.values()), 1),
        "loadavg": os.getloadavg()[0],
        "run_seconds": round(time.time() - started, 1),
    }

    print(f"{'s':>3} {'Adrain':>6} {'disc':>6} {'reconn':>6} {'fail':>5} {'tokQ/s':>7} {'hit/s':>7} {'miss/s':>7} "
          f"{'lsnDrp':>6} {'cpuB':>5} {'cpuAu':>5} {'cpuPG':>5} {'A':>6} {'B':>6} {'B+/s':>6}")
    for i in range(n_seconds):
        r = rows[i + 1] if i + 1 < len(rows) else {}  # rows[k] covers (k-1, k] s

        def fmt(v, w, p=0):
            return f"{'-':>{w}}" if v is None else f"{v:>{w}.{p}f}"
        print(f"{i:>3} {fmt(r.get('a_drained_per_s'), 6)} {d_ps[i]:>6} {r_ps[i]:>6} {f_ps[i]:>5} {fmt(r.get('token_queries_per_s'), 7)} "
              f"{fmt(r.get('token_cache_hits_per_s'), 7)} {fmt(r.get('token_cache_misses_per_s'), 7)} "
              f"{fmt(r.get('listen_drops_per_s'), 6)} {fmt(r.get('cpu_b'), 5, 2)} {fmt(r.get('cpu_auth'), 5, 2)} {fmt(r.get('cpu_pg'), 5, 2)} "
              f"{fmt(r.get('a_clients'), 6)} {fmt(r.get('b_clients'), 6)} {fmt(r.get('b_gain_per_s'), 6)}")
    print("DRAIN_RESULT " + json.dumps(result))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"result": result, "per_second": {"disconnects": d_ps, "reconnects": r_ps, "failures": f_ps},
                       "metrics": rows}, f, indent=1)
    return 0 if result["clients_not_reconnected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
