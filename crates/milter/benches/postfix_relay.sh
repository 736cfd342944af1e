#!/usr/bin/env bash
# Measures what the Gatehouse milter costs Postfix: a private Postfix
# instance relays smtp-source's mail to smtp-sink, first alone, then with
# `gatehouse serve` as its milter, with 1 and with 20 concurrent sessions.
#
# Usage, as root, from the repository root after
# `cargo build --release -p gatehouse`:
#
#     bash crates/milter/benches/postfix_relay.sh [MESSAGES_1] [MESSAGES_20]
#
# MESSAGES_1 (default 500) and MESSAGES_20 (default 2000) are the message
# counts of the 1-session and 20-session runs. Each run prints messages per
# second from the start of smtp-source until Postfix's queue is empty again,
# so relaying to smtp-sink counts too. Everything listens on 127.0.0.1 and
# stops at the end. The graph first learns crates/cli/tests/data/history.mbox,
# so the benchmark's sender is a known partner and its mail is delivered.
set -euo pipefail

messages_1=${1:-500}
messages_20=${2:-2000}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
gatehouse=${GATEHOUSE:-${CARGO_TARGET_DIR:-$repo/target}/release/gatehouse}

for tool in /usr/sbin/postfix /usr/sbin/postconf /usr/sbin/smtp-source /usr/sbin/smtp-sink "$gatehouse"; do
    if [ ! -x "$tool" ]; then
        echo "error: $tool is missing; install Debian's postfix package and run cargo build --release -p gatehouse" >&2
        exit 1
    fi
done
if [ "$(id -u)" != 0 ]; then
    echo "error: starting Postfix needs root" >&2
    exit 1
fi

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    /usr/sbin/postfix -c "$work/postfix" stop >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
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

# smtp-sink accepts and drops everything, with up to 256 sessions.
sink_port=$(free_port)
/usr/sbin/smtp-sink -u nobody "127.0.0.1:$sink_port" 256 &
pids+=($!)
wait_for_port "$sink_port"

# Postfix from the deployment's main.cf and master.cf, relaying every
# message to smtp-sink instead of delivering example.com locally.
smtp_port=$(free_port)
mkdir -p "$work/postfix" "$work/queue" "$work/data"
cp "$repo"/docker/postfix/{main.cf,master.cf,virtual_mailboxes} "$work/postfix/"
sed -i "s/^smtp      inet/127.0.0.1:$smtp_port inet/; s/^10025     inet/#10025     inet/" "$work/postfix/master.cf"
sed -i '/^#10025/,/^pickup/{/^  -o/d}' "$work/postfix/master.cf"
# Only the proxy's service used gatehouse_hosts; unused, Postfix warns at every command.
/usr/sbin/postconf -c "$work/postfix" -X gatehouse_hosts
chown postfix "$work/data"
/usr/sbin/postconf -c "$work/postfix" -e \
    "queue_directory=$work/queue" \
    "data_directory=$work/data" \
    "inet_interfaces=127.0.0.1" \
    "maillog_file_prefixes=$work" \
    "maillog_file=$work/maillog" \
    "virtual_mailbox_domains=" \
    "relay_domains=example.com" \
    "relayhost=[127.0.0.1]:$sink_port" \
    "smtpd_peername_lookup=no" \
    "default_process_limit=100" \
    "smtp_destination_concurrency_limit=20"

# Gatehouse with the milter front on its own port.
milter_port=$(free_port)
cat > "$work/gatehouse.toml" <<EOF
[gateway]
local_domains = ["example.com"]
data_dir = "data"
quarantine_dir = "quarantine"
[milter]
listen = "127.0.0.1:$milter_port"
EOF
"$gatehouse" learn --config "$work/gatehouse.toml" "$repo/crates/cli/tests/data/history.mbox" >/dev/null

queue_empty() {
    [ -z "$(find "$work/queue/incoming" "$work/queue/active" "$work/queue/deferred" "$work/queue/maildrop" -type f 2>/dev/null | head -1)" ]
}

# Prints messages per second for one smtp-source run.
measure() {
    local sessions=$1 count=$2
    local start end
    start=$(date +%s.%N)
    /usr/sbin/smtp-source -s "$sessions" -m "$count" -l 2000 \
        -f partner@partner.test -t alice@example.com "127.0.0.1:$smtp_port"
    until queue_empty; do
        sleep 0.05
    done
    end=$(date +%s.%N)
    python3 -c "print(f'{$count / ($end - $start):.0f}')"
}

run_all() {
    local label=$1
    /usr/sbin/postfix -c "$work/postfix" start >/dev/null
    wait_for_port "$smtp_port"
    # A short warm-up starts Postfix's daemons and fills the caches.
    measure 5 100 >/dev/null
    local one twenty
    one=$(measure 1 "$messages_1")
    twenty=$(measure 20 "$messages_20")
    /usr/sbin/postfix -c "$work/postfix" stop >/dev/null
    sleep 1
    printf '%-22s %8s msg/s %8s msg/s\n' "$label" "$one" "$twenty"
}

printf '%-22s %14s %14s\n' "" "1 session" "20 sessions"

/usr/sbin/postconf -c "$work/postfix" -e "smtpd_milters="
run_all "Postfix alone"

RUST_LOG=warn "$gatehouse" serve --config "$work/gatehouse.toml" 2>"$work/gatehouse.log" &
pids+=($!)
wait_for_port "$milter_port"
/usr/sbin/postconf -c "$work/postfix" -e "smtpd_milters=inet:127.0.0.1:$milter_port"
run_all "Postfix + Gatehouse"

if grep -q "milter-reject\|milter-discard\|milter.*tempfail" "$work/maillog"; then
    echo "warning: the milter did not accept every message; see the Postfix log lines below" >&2
    grep "milter" "$work/maillog" | head -5 >&2
fi
