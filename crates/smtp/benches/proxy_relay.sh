#!/usr/bin/env bash
# Measures what the Gatehouse SMTP proxy costs a client: smtp-source sends
# mail to smtp-sink directly, then through `gatehouse serve`'s proxy with
# smtp-sink as its upstream, with 1 and with 20 concurrent sessions, for the
# plain and the DOCX-with-QR message of fixtures/bench/.
#
# Usage, from the repository root after `cargo build --release -p gatehouse`:
#
#     bash crates/smtp/benches/proxy_relay.sh [MESSAGES_1] [MESSAGES_20] [PROBES]
#
# MESSAGES_1 (default 500) and MESSAGES_20 (default 2000) are the message
# counts of smtp-source's 1-session and 20-session runs. Throughput is
# messages per second from the start of smtp-source to its exit. Each
# message is one SMTP session (connect, HELO, MAIL, RCPT, DATA, QUIT), as
# smtp-source sends it without -d.
#
# Latency comes from a separate Python client, because smtp-source reports
# none: PROBES (default 300) sessions, one at a time and then 20 at a time,
# each timed from connect to the reply to the final dot. The script prints
# the median (p50) and the 99th percentile (p99) of that time for each
# path, and the added latency: the proxy's p99 minus the direct p99.
#
# Each row ends with the CPU time per message of every process in the
# throughput runs, in milliseconds: smtp-source and smtp-sink directly, and
# smtp-source, smtp-sink and Gatehouse through the proxy. When the direct
# path already uses every core, the proxy's share is what it must give up.
#
# Everything listens on 127.0.0.1 and stops at the end. Verdicts: the plain
# message is tagged and relayed to smtp-sink, and the DOCX-with-QR message
# is held, so each of its sessions ends with a durable quarantine write.
set -euo pipefail

messages_1=${1:-500}
messages_20=${2:-2000}
probes=${3:-300}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
gatehouse=${GATEHOUSE:-${CARGO_TARGET_DIR:-$repo/target}/release/gatehouse}

for tool in /usr/sbin/smtp-source /usr/sbin/smtp-sink "$gatehouse"; do
    if [ ! -x "$tool" ]; then
        echo "error: $tool is missing; install Debian's postfix package and run cargo build --release -p gatehouse" >&2
        exit 1
    fi
done

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "error: nothing listens on 127.0.0.1:$1" >&2
    exit 1
}

# smtp-source -F appends CRLF to every line it reads, so the fixtures lose
# their CR first. A CR left in place would reach the proxy as a bare CR,
# which the proxy rejects as SMTP smuggling.
for name in plain docx-qr; do
    tr -d '\r' < "$repo/fixtures/bench/$name.eml" > "$work/$name.eml"
done

# smtp-sink accepts and drops everything, with up to 256 sessions. Started
# as root, it requires -u and switches to that user.
sink_port=$(free_port)
sink_user=()
if [ "$(id -u)" = 0 ]; then
    sink_user=(-u nobody)
fi
/usr/sbin/smtp-sink "${sink_user[@]}" "127.0.0.1:$sink_port" 256 &
sink_pid=$!
pids+=("$sink_pid")
wait_for_port "$sink_port"

# Gatehouse with only the SMTP proxy, relaying to smtp-sink.
proxy_port=$(free_port)
cat > "$work/gatehouse.toml" <<EOF
[gateway]
local_domains = ["example.com"]
data_dir = "data"
quarantine_dir = "quarantine"
[smtp]
listen = "127.0.0.1:$proxy_port"
upstream = "127.0.0.1:$sink_port"
EOF
RUST_LOG=warn "$gatehouse" serve --config "$work/gatehouse.toml" 2>"$work/gatehouse.log" &
gatehouse_pid=$!
pids+=("$gatehouse_pid")
wait_for_port "$proxy_port"

# The Python latency client: prints "p50 p99" in milliseconds.
cat > "$work/probe.py" <<'EOF'
import socket, sys, threading, time

port, sessions, count, path, sender, recipient = sys.argv[1:7]
sessions, count = int(sessions), int(count)
with open(path, "rb") as f:
    lines = f.read().split(b"\n")
if lines and lines[-1] == b"":
    lines.pop()
body = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"

def read_reply(reader):
    while True:
        line = reader.readline()
        if not line:
            raise RuntimeError("connection closed")
        if line[3:4] != b"-":
            if not line[:1] in (b"2", b"3"):
                raise RuntimeError(line.decode(errors="replace").strip())
            return

def session():
    start = time.perf_counter()
    connection = socket.create_connection(("127.0.0.1", int(port)))
    reader = connection.makefile("rb")
    read_reply(reader)
    for command in (b"EHLO probe.test", b"MAIL FROM:<" + sender.encode() + b">",
                    b"RCPT TO:<" + recipient.encode() + b">", b"DATA"):
        connection.sendall(command + b"\r\n")
        read_reply(reader)
    connection.sendall(body)
    read_reply(reader)
    elapsed = time.perf_counter() - start
    connection.sendall(b"QUIT\r\n")
    reader.close()
    connection.close()
    return elapsed

times = []
lock = threading.Lock()
def worker(sessions_to_run):
    for _ in range(sessions_to_run):
        elapsed = session()
        with lock:
            times.append(elapsed)

threads = [threading.Thread(target=worker, args=(count // sessions + (i < count % sessions),))
           for i in range(sessions)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
times.sort()

def percentile(p):
    return times[min(len(times) - 1, int(p / 100 * len(times)))] * 1000

print(f"{percentile(50):.1f} {percentile(99):.1f}")
EOF

# Prints the CPU time a running process has used, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Runs smtp-source once and prints messages per second, then the CPU time
# per message, in milliseconds, of smtp-source, smtp-sink and Gatehouse.
throughput() {
    local port=$1 sessions=$2 count=$3 file=$4 sender=$5 recipient=$6
    local start end sink_before gatehouse_before source_cpu
    sink_before=$(cpu_ticks "$sink_pid")
    gatehouse_before=$(cpu_ticks "$gatehouse_pid")
    start=$(date +%s.%N)
    /usr/bin/time -o "$work/source.time" -f '%U %S' /usr/sbin/smtp-source -s "$sessions" -m "$count" -F "$file" \
        -f "$sender" -t "$recipient" "127.0.0.1:$port"
    end=$(date +%s.%N)
    source_cpu=$(awk '{ print $1 + $2 }' "$work/source.time")
    python3 -c "
ticks = $(getconf CLK_TCK)
print(f'{$count / ($end - $start):.0f}',
      f'{1000 * $source_cpu / $count:.2f}',
      f'{1000 * ($(cpu_ticks "$sink_pid") - $sink_before) / ticks / $count:.2f}',
      f'{1000 * ($(cpu_ticks "$gatehouse_pid") - $gatehouse_before) / ticks / $count:.2f}')"
}

printf '%-8s %8s %11s %11s %6s %17s %17s %9s  %s\n' "message" "sessions" "direct" "proxy" "ratio" "direct p50/p99" "proxy p50/p99" "added p99" \
    "CPU ms/msg direct source+sink | proxy source+sink+gatehouse"
for case in "plain j.brandt@hanse-shipping.example sophie.martin@example.com" \
            "docx-qr 38117@brand.example jun.ma@example.com"; do
    read -r name sender recipient <<<"$case"
    file="$work/$name.eml"
    # A short warm-up for both paths.
    throughput "$sink_port" 5 50 "$file" "$sender" "$recipient" >/dev/null
    throughput "$proxy_port" 5 50 "$file" "$sender" "$recipient" >/dev/null
    for sessions in 1 20; do
        count=$messages_1
        if [ "$sessions" = 20 ]; then
            count=$messages_20
        fi
        read -r direct direct_source direct_sink _ < <(throughput "$sink_port" "$sessions" "$count" "$file" "$sender" "$recipient")
        read -r proxied proxy_source proxy_sink proxy_gatehouse < <(throughput "$proxy_port" "$sessions" "$count" "$file" "$sender" "$recipient")
        ratio=$(python3 -c "print(f'{100 * $proxied / $direct:.0f}%')")
        read -r direct_p50 direct_p99 < <(python3 "$work/probe.py" "$sink_port" "$sessions" "$probes" "$file" "$sender" "$recipient")
        read -r proxy_p50 proxy_p99 < <(python3 "$work/probe.py" "$proxy_port" "$sessions" "$probes" "$file" "$sender" "$recipient")
        added=$(python3 -c "print(f'{$proxy_p99 - $direct_p99:.1f}')")
        printf '%-8s %8s %5s msg/s %5s msg/s %6s %17s %17s %6s ms  %s+%s | %s+%s+%s\n' "$name" "$sessions" "$direct" "$proxied" "$ratio" \
            "$direct_p50/$direct_p99 ms" "$proxy_p50/$proxy_p99 ms" "$added" \
            "$direct_source" "$direct_sink" "$proxy_source" "$proxy_sink" "$proxy_gatehouse"
    done
done

held=$(find "$work/quarantine" -name '*.eml' 2>/dev/null | wc -l)
echo "held in quarantine: $held messages"
if grep -q "ERROR\|WARN" "$work/gatehouse.log"; then
    echo "warning: gatehouse logged warnings or errors; the first lines follow" >&2
    grep "ERROR\|WARN" "$work/gatehouse.log" | head -5 >&2
fi
