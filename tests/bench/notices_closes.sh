#!/usr/bin/env bash
# sluice-bench must notice every server that closes right behind its last bytes (the FIN
# arrives with the data, in one wake-up). Its client sockets are edge-triggered, so a
# close missed there would bring no second event: the connection would look alive, and a
# fault run would pass clients that were cut (docs/benchmarks.md#the-tool-edge-triggered).
#
# usage: notices_closes.sh SLUICE_BENCH_BINARY
# Starts a throwaway Redis (the tool publishes) and a 20-line SSE server that answers
# each request with a response head and one comment, then closes at once.
set -euo pipefail
bench=$1
clients=200
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # $dir, $redis_port, free_port, wait_for_port

server_port=$(free_port)
python3 - "$server_port" >"$dir/server.log" 2>&1 <<'PY' &
import socket, sys, threading
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(1024)
def answer_and_close(c):
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n3\r\n:)\n\r\n")
    c.close()
while True:
    conn, _ = listener.accept()
    threading.Thread(target=answer_and_close, args=(conn,), daemon=True).start()
PY
wait_for_port "$server_port"

# The run fails (every client was cut); what matters is that the tool saw each cut.
out=$("$bench" --no-progress --port "$server_port" --redis-port "$redis_port" --token t --account-id 1 \
  --clients "$clients" --transport sse --stream user --events 2 --rate 10 --max-seconds 60 2>&1 || true)
result=$(grep '^SLUICE_BENCH_RESULT ' <<<"$out" | sed 's/^SLUICE_BENCH_RESULT //' || true)
if [ -z "$result" ]; then
  echo "notices_closes: no result from sluice-bench:" >&2
  echo "$out" | tail -20 >&2
  exit 1
fi
dropped=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["connections"]["dropped"])' "$result")
echo "notices_closes: $dropped of $clients closes noticed"
[ "$dropped" -eq "$clients" ]
