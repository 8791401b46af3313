#!/usr/bin/env bash
# sluice-bench must fail a connection wherever a browser's EventSource or WebSocket
# would: a response head a browser refuses, or a frame that makes it fail the
# connection (RFC 6455 4.1, 5.2, 5.4, 5.5, 7.1.5). Otherwise a server that no browser
# could use would pass the benchmarks (docs/benchmarks.md#per-event-verification).
#
# usage: refuses_protocol_errors.sh SLUICE_BENCH_BINARY
# Starts a throwaway Redis (the tool publishes) and a small server that answers every
# request with the case named on its command line; runs the tool once per case and
# reads the reason it gives for each client it failed or dropped.
set -euo pipefail
bench=$1
clients=4
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # $dir, $redis_port, free_port, wait_for_port

cat >"$dir/server.py" <<'PY'
import base64, hashlib, socket, sys, threading

case = sys.argv[2]
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

def frame(first_byte, payload):
    assert len(payload) < 65536
    head = bytes([first_byte]) + (bytes([len(payload)]) if len(payload) < 126 else bytes([126]) + len(payload).to_bytes(2, "big"))
    return head + payload

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
SSE = {
    "sse-good": SSE_HEAD + b"3\r\n:)\n\r\n",
    "sse-no-content-type": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n:)\n\r\n",
    "sse-wrong-content-type": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n:)\n\r\n",
    "sse-status-2000": b"HTTP/1.1 2000 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
}
HEADERS = {  # the 101's headers besides Sec-WebSocket-Accept
    "ws-no-upgrade": b"Connection: Upgrade\r\n",
    "ws-no-connection": b"Upgrade: websocket\r\n",
    "ws-extension": b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
    "ws-protocol": b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: token\r\n",
}
FRAMES = {  # sent right after a correct 101
    "ws-good": frame(0x81, b'{"event":"x"}') + frame(0x89, b"p"),
    "ws-rsv1": frame(0x81 | 0x40, b'{"event":"x"}'),
    "ws-data-inside-fragments": frame(0x01, b'{"event"') + frame(0x81, b'{"event":"x"}'),
    "ws-long-ping": frame(0x89, b"p" * 126),
    "ws-fragmented-ping": frame(0x09, b"p"),
    "ws-close-one-byte": frame(0x88, b"\x03"),
    "ws-text-not-utf8": frame(0x81, b'{"event":"\xff"}'),
    "ws-close-code-1005": frame(0x88, (1005).to_bytes(2, "big")),
    "ws-close-reason-not-utf8": frame(0x88, (1000).to_bytes(2, "big") + b"\xc3"),
    "ws-close-1001-with-reason": frame(0x88, (1001).to_bytes(2, "big") + b"going away \xc3\xa9"),
    "ws-close-2000": frame(0x88, (2000).to_bytes(2, "big")),
}

def answer(c):
    request = b""
    while b"\r\n\r\n" not in request:
        data = c.recv(65536)
        if not data:
            return
        request += data
    if case.startswith("sse-"):
        c.sendall(SSE[case])
    else:
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        headers = HEADERS.get(case, b"Upgrade: websocket\r\nConnection: Upgrade\r\n")
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\n" + headers + b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" +
                  FRAMES.get(case, b""))
    while c.recv(65536):  # held open until the client goes
        pass

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(1024)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=answer, args=(conn,), daemon=True).start()
PY


failures=0
# check CASE TRANSPORT KIND REASON: every client failed (KIND fail) or dropped (drop) for
# REASON; KIND none: neither happened to any client (the server is one a browser reads).
check() {
  local case=$1 transport=$2 kind=$3 reason=${4:-}
  local port server out result verdict
  port=$(free_port)
  python3 "$dir/server.py" "$port" "$case" >"$dir/server-$case.log" 2>&1 &
  server=$!
  wait_for_port "$port"
  out=$("$bench" --no-progress --port "$port" --redis-port "$redis_port" --token t --account-id 1 \
    --clients "$clients" --transport "$transport" --stream user --events 1 --rate 10 --settle-ms 0 --subscribe-timeout-ms 100 --drain-ms 200 \
    --linger-ms 0 --max-seconds 60 2>&1 || true)
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  result=$(grep '^SLUICE_BENCH_RESULT ' <<<"$out" | sed 's/^SLUICE_BENCH_RESULT //' || true)
  if [ -z "$result" ]; then
    echo "FAIL  $case: no result from sluice-bench:" >&2
    echo "$out" | tail -20 >&2
    failures=$((failures + 1))
    return
  fi
  verdict=$(python3 - "$result" "$kind" "$reason" "$clients" <<'PY'
import json, sys
result, kind, reason, clients = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = result["connections"]
failed, dropped = conn.get("fail_reasons", {}), conn.get("drop_reasons", {})
if kind == "none":
    ok = not failed and not dropped
else:
    got = failed if kind == "fail" else dropped
    ok = got == {reason: clients}
print(("ok" if ok else "wrong") + " failed=" + json.dumps(failed) + " dropped=" + json.dumps(dropped))
PY
)
  if [[ $verdict == ok* ]]; then
    echo "PASS  $case: ${verdict#ok }"
  else
    echo "FAIL  $case (want $kind ${reason:-nothing}): ${verdict#wrong }" >&2
    failures=$((failures + 1))
  fi
}

check sse-good sse none
check sse-no-content-type sse fail "SSE response without Content-Type: text/event-stream"
check sse-wrong-content-type sse fail "SSE response without Content-Type: text/event-stream"
check sse-status-2000 sse fail "malformed HTTP response"
check ws-good ws none
check ws-no-upgrade ws fail "WebSocket response without Upgrade: websocket"
check ws-no-connection ws fail "WebSocket response without Connection: Upgrade"
check ws-extension ws fail "WebSocket extension the client did not ask for"
check ws-protocol ws fail "WebSocket subprotocol the client did not ask for"
check ws-rsv1 ws drop "WebSocket reserved bits set (no extension was agreed)"
check ws-data-inside-fragments ws drop "WebSocket data frame inside a fragmented message"
check ws-long-ping ws drop "WebSocket control frame fragmented or longer than 125 bytes"
check ws-fragmented-ping ws drop "WebSocket control frame fragmented or longer than 125 bytes"
check ws-close-one-byte ws drop "WebSocket close with a one-byte body"
check ws-text-not-utf8 ws drop "WebSocket text message that is not UTF-8"
check ws-close-code-1005 ws drop "WebSocket close with a reserved code, or a reason that is not UTF-8"
check ws-close-reason-not-utf8 ws drop "WebSocket close with a reserved code, or a reason that is not UTF-8"
# Closes a browser takes as closes (Chromium refuses only the reserved codes).
check ws-close-1001-with-reason ws drop "WebSocket close 1001"
check ws-close-2000 ws drop "WebSocket close 2000"

if [ "$failures" -ne 0 ]; then
  echo "refuses_protocol_errors: $failures case(s) FAILED" >&2
  exit 1
fi
echo "refuses_protocol_errors: every case passed"
