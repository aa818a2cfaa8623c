#!/usr/bin/env bash
# A demonstration that needs no CAN hardware: a tcpcan server and client on 127.0.0.1,
# each with the stdio "interface" (-), exchange frames in both directions.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh --demo
# Its own build folder, with only the program: the test command's build/ is configured in
# test mode by scripts/test.sh, never by this demo (which installs fewer packages).
demo_options=(-Dtools=enabled -Dtests=disabled)
if [ -f build-demo/build.ninja ]; then
    meson setup --reconfigure build-demo "${demo_options[@]}"
else
    meson setup build-demo "${demo_options[@]}"
fi
meson compile -C build-demo tools/tcpcan
tcpcan=build-demo/tools/tcpcan

work=$(mktemp -d)
server_pid=""; client_pid=""
cleanup() {
    for pid in $client_pid $server_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkfifo "$work/server.in" "$work/client.in"

wait_for() {  # file, text: up to 10 s
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "demo: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

echo "== server: tcpcan server --can - --bind 127.0.0.1 --port $port --timestamps"
"$tcpcan" server --can - --bind 127.0.0.1 --port "$port" --timestamps \
    <"$work/server.in" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
exec 3>"$work/server.in"
wait_for "$work/server.log" "listening on"

echo "== client: tcpcan client --can - --host 127.0.0.1 --port $port --timestamps --heartbeat 1"
"$tcpcan" client --can - --host 127.0.0.1 --port "$port" --timestamps --heartbeat 1 \
    <"$work/client.in" >"$work/client.out" 2>"$work/client.log" &
client_pid=$!
exec 4>"$work/client.in"
wait_for "$work/client.log" "features agreed"

echo "== client -> server: classic, extended, remote, CAN FD with BRS, a timestamped log line"
printf '%s\n' '123#DEADBEEF' '1ABCDE0F#0102030405060708' '7FF#R4' '321##1000102030405060708090A0B' \
    '(1700000000.123456) can0 0C8#CAFE' >&4
echo "== server -> client: two frames"
printf '%s\n' '456#11223344' '18DAF110#0011' >&3
for _ in $(seq 100); do
    [ "$(wc -l <"$work/server.out")" -ge 5 ] && [ "$(wc -l <"$work/client.out")" -ge 2 ] && break
    sleep 0.1
done

sleep 1.5  # one heartbeat round trip, so the statistics show the link's RTT
kill -TERM "$client_pid" "$server_pid"
wait "$client_pid" "$server_pid" || true
client_pid=""; server_pid=""

echo; echo "-- what the server put on its bus (stdout):"; cat "$work/server.out"
echo; echo "-- what the client put on its bus (stdout):"; cat "$work/client.out"
echo; echo "-- server log:"; cat "$work/server.log"
echo; echo "-- client log:"; cat "$work/client.log"
[ "$(wc -l <"$work/server.out")" -eq 5 ] && [ "$(wc -l <"$work/client.out")" -eq 2 ] || { echo "demo: frames missing" >&2; exit 1; }
echo; echo "demo: all 7 frames crossed"
