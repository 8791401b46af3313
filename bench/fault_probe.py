#!/usr/bin/env python3
"""New connections during a fault, for bench/faults.sh.

Every INTERVAL seconds, until STOP_FILE exists, opens one SSE connection to the user
stream and records the HTTP status (or the error) of the answer, alternating between
a token the load already uses (seen: in the auth caches) and a token never used
before (unseen: each used once). One line per attempt on stdout:

    <unix ms> <seen|unseen> <status or error>
"""
import argparse
import os
import socket
import sys
import threading
import time


def attempt(port, token, timeout):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(("GET /api/v1/streaming/user HTTP/1.1\r\nHost: faults\r\n"
                       "Authorization: Bearer %s\r\n\r\n" % token).encode())
            head = b""
            while b"\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    return "closed"
                head += chunk
            parts = head.split(b"\r\n", 1)[0].split()
            return parts[1].decode() if len(parts) > 1 else "garbled"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return "refused" if isinstance(e, ConnectionRefusedError) else "error"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seen", required=True, help="file: one token per line, already in use")
    p.add_argument("--unseen", required=True, help="file: one token per line, never used")
    p.add_argument("--stop-file", required=True)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--timeout", type=float, default=3.0)
    a = p.parse_args()
    seen = [l.split()[0] for l in open(a.seen) if l.strip() and not l.startswith("#")]
    unseen = [l.split()[0] for l in open(a.unseen) if l.strip() and not l.startswith("#")]
    lock = threading.Lock()
    n = 0

    def one(kind, token):
        status = attempt(a.port, token, a.timeout)
        with lock:
            print("%d %s %s" % (int(time.time() * 1000), kind, status), flush=True)

    threads = []
    while not os.path.exists(a.stop_file):
        if n % 2 == 0 or not unseen:
            kind, token = "seen", seen[(n // 2) % len(seen)]
        else:
            kind, token = "unseen", unseen.pop()
        t = threading.Thread(target=one, args=(kind, token), daemon=True)
        t.start()
        threads.append(t)
        n += 1
        time.sleep(a.interval)
    for t in threads:
        t.join(a.timeout + 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
