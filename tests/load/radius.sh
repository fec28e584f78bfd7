#!/usr/bin/env bash
# RADIUS authorization benchmark (issue 17): destination authorizations a second that the
# running release switch grants on SQLite, each a new call on its own card (look-up, rating,
# reservation: the same ledger work as a SIP call's authorization). Not a CI test; figures in
# docs/PERFORMANCE.md, section "RADIUS".
#
#   bash tests/load/radius.sh [REQUESTS [PARALLEL]]      defaults: 5000 requests, 200 in flight
#
# Environment: TALKTIME_BIN (release binary), LOAD_WORK [/tmp/talktime-radius],
# AUTH_PORT [18120], ACCT_PORT [18130], SIP_PORT [18060].
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${TALKTIME_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/talktime}
WORK=${LOAD_WORK:-/tmp/talktime-radius}
AUTH_PORT=${AUTH_PORT:-18120}
ACCT_PORT=${ACCT_PORT:-18130}
SIP_PORT=${SIP_PORT:-18060}
REQUESTS=${1:-5000}
PARALLEL=${2:-200}
SECRET=benchmark-secret

[[ -x $BIN ]] || { echo "no switch binary at $BIN (cargo build --release -p talktime)" >&2; exit 1; }
command -v radclient >/dev/null || { echo "radclient missing (apt-get install freeradius-utils)" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK"
cat >"$WORK/talktime.toml" <<TOML
[log]
filter = "warn"
[demo]
enabled = false
[billing]
default_tariff = "bench"
[radius]
auth_listen = "127.0.0.1:$AUTH_PORT"
acct_listen = "127.0.0.1:$ACCT_PORT"
[[radius.clients]]
address = "127.0.0.1"
secret = "$SECRET"
name = "bench"
TOML
printf 'prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n1,USA,0.60,0.10,1,1,0\n' \
    >"$WORK/rates.csv"
"$BIN" tariffs import --data-dir "$WORK" --tariff bench "$WORK/rates.csv" >/dev/null
"$BIN" cards generate --data-dir "$WORK" --name bench --count "$REQUESTS" --value 10.00 \
    --tariff bench --output "$WORK/cards.csv" 2>/dev/null
# One Access-Request per card: authorize 0015551234567 for a call of its own.
python3 - "$WORK/cards.csv" "$WORK/requests.txt" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
with open(sys.argv[2], "w") as out:
    for index, row in enumerate(rows):
        pin = row["pin"]
        out.write(f'User-Name = "{pin}", User-Password = "{pin}", '
                  f'Called-Station-Id = "0015551234567", '
                  f'h323-conf-id = "h323-conf-id=BENCH-{index}", Message-Authenticator = 0x00\n\n')
PY
timeout 600 "$BIN" serve --config "$WORK/talktime.toml" --data-dir "$WORK" \
    --sip-udp "127.0.0.1:$SIP_PORT" --sip-tcp "127.0.0.1:$SIP_PORT" --admin-listen "" \
    >"$WORK/switch.log" 2>&1 &
SWITCH=$!
trap 'kill $SWITCH 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    ss -Hlun "sport = :$AUTH_PORT" | grep -q . && break
    sleep 0.1
done
start=$(date +%s.%N)
timeout 600 radclient -q -s -t 5 -r 3 -p "$PARALLEL" -f "$WORK/requests.txt" \
    "127.0.0.1:$AUTH_PORT" auth "$SECRET" >"$WORK/radclient.out" 2>&1 || true
end=$(date +%s.%N)
accepted=$(grep -o 'Accepted *: *[0-9]*' "$WORK/radclient.out" | grep -o '[0-9]*$' | head -1 || true)
open=$(sqlite3 "$WORK/talktime.sqlite3" "SELECT count(*) FROM reservations WHERE state = 'open'")
awk -v n="$REQUESTS" -v a="${accepted:-0}" -v o="$open" -v s="$start" -v e="$end" -v p="$PARALLEL" \
    'BEGIN { printf "radius requests=%d parallel=%d accepted=%d open_reservations=%d seconds=%.2f rate=%.0f/s\n", n, p, a, o, e - s, n / (e - s) }'
