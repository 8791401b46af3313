#!/usr/bin/env python3
"""Idle clients of many instances, as a hosting provider's fleet sees them
(docs/hosting.md#cost): for every tenant of a tenants file, CLIENTS SSE `user` streams
opened on a Sluice gateway with the tenant's Host and one of the bench tokens each.

Prints one JSON line once every stream answered ({"opened": n, "refused": m, ...}),
then waits until each open stream has received at least one `update` (the caller
publishes one per client channel, so this proves every subscription is live in its
own instance) or until --verify-seconds pass, prints {"verified": k}, and holds the
streams until stdin closes.

  hold_streams.py --port P --tenants FILE --tokens T1,T2,... [--concurrency 200]
"""
import argparse
import asyncio
import json
import sys
import time


async def open_stream(port, host, token, results):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (f"GET /api/v1/streaming/user HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
         "Accept: text/event-stream\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode()
    results.append((status, reader, writer))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tenants", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--verify-seconds", type=float, default=120)
    args = parser.parse_args()
    with open(args.tenants) as f:
        tenants = json.load(f)["tenants"]
    tokens = [t for t in args.tokens.split(",") if t]

    results = []
    gate = asyncio.Semaphore(args.concurrency)
    started = time.monotonic()

    async def one(host, token):
        async with gate:
            try:
                await open_stream(args.port, host, token, results)
            except (OSError, asyncio.IncompleteReadError) as error:
                results.append((type(error).__name__, None, None))

    await asyncio.gather(*(one(tenant["hosts"][0], token) for tenant in tenants.values() for token in tokens))
    opened = [(reader, writer) for status, reader, writer in results if status == "200"]
    statuses = {}
    for status, _, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    print(json.dumps({"opened": len(opened), "refused": len(results) - len(opened), "statuses": statuses,
                      "seconds_to_open": round(time.monotonic() - started, 1)}), flush=True)

    # Every open stream must hear the `update` published on its own channel.
    async def hears_update(reader):
        seen = b""
        while b"event: update" not in seen:
            chunk = await reader.read(65536)
            if not chunk:
                return False
            seen = seen[-64:] + chunk
        return True

    tasks = [asyncio.ensure_future(hears_update(reader)) for reader, _ in opened]
    done, _ = await asyncio.wait(tasks, timeout=args.verify_seconds) if tasks else (set(), set())
    verified = sum(1 for task in done if task.result())
    print(json.dumps({"verified": verified}), flush=True)

    # Hold until stdin closes.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, writer in opened:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
