#!/usr/bin/env bash
# SIPp load benchmark for the running switch (loopback only). Not a CI test.
# Results and how they were obtained: docs/PERFORMANCE.md, section "SIPp load".
#
#   bash tests/load/run.sh options  [RATE...]       OPTIONS transactions/s
#   bash tests/load/run.sh testcall [RATE...]       INVITE to the test number (tone, switch BYE)
#   bash tests/load/run.sh prepaid  [RATE...]       pinless forwarded calls, short holds (HOLD_MS)
#   bash tests/load/run.sh hold     [CALLS:SECONDS...]  N concurrent prepaid calls of S seconds
#   bash tests/load/run.sh soak     [RATE [MINUTES]]    prepaid calls at RATE/s [300] for MINUTES
#                                   [30]; RSS, descriptors and open reservations sampled
#                                   every SOAK_SAMPLE_S [30] into $LOAD_WORK/soak.tsv
#   bash tests/load/run.sh console [CALLS]            CALLS [1000] prepaid calls held up while the
#                                   console's live-calls page is read PAGE_READS [20] times
#   bash tests/load/run.sh memory  [CALLS [RATE]]   CALLS [10000] prepaid calls placed at RATE/s
#                                   [500] and held up at once: the switch's resident memory
#                                   idle and with every call up, per call; calls_up from
#                                   /metrics; the ledger check after (RTP_RANGE must hold two
#                                   port pairs a call, e.g. RTP_RANGE=12000-61999);
#                                   SETTLE_S=40 samples once the calls' INVITE transactions
#                                   have ended (what a call of a few minutes holds)
#   bash tests/load/run.sh versus  [RATE...]       the same pinless load through Kamailio (a
#                                   stateful proxy to the same SIPp carrier: tm, sl, rr, dialog,
#                                   2 workers, TLSF) and through Talktime (prepaid), rate by
#                                   rate in one run; both rates, CPU, and the ratio
#   bash tests/load/run.sh ab      [RATE...]       the prepaid steps with two switch binaries,
#                                   BIN_A and BIN_B, alternated PAIRS [3] times (A, B, A, B, ...)
#                                   in one run; then each rate's connected calls and 503s by
#                                   binary, run by run, and their medians (rates move a lot
#                                   between runs on a shared machine: compare within one run)
#   bash tests/load/run.sh all
#
# Rates step up until a step has failed calls or delivers under 90 % of the offered rate
# (KEEP_GOING=1 runs every step). Every SIPp run and the switch itself run under `timeout`.
# Environment (defaults in brackets):
#   TALKTIME_BIN   the switch [$CARGO_TARGET_DIR/release/talktime, else target/release/talktime]
#   BIN_A, BIN_B   the two switch binaries `ab` compares; PAIRS how many times each runs [3];
#                  CORES_A, CORES_B their core threads [CORE_THREADS] (the same binary twice
#                  with CORES_A=1 CORES_B=2 compares one core loop with two)
#   CORE_THREADS   the switch's core threads ([sip] core_threads) [1]
#   LOAD_WORK      scratch directory [/tmp/talktime-load]
#   SIP_PORT       switch SIP port, UDP and TCP [15060]; CARRIER_PORT carrier UAS [15070]
#   CALLER_PORT    caller SIPp port [15080]; RTP_RANGE switch media ports [20000-59999]: a
#                  call holds two pairs, and a port pair is reused only after the rest of the
#                  range (9000-14999 capped a 1 s load near 1,000 calls/s, 16000-30999 near
#                  2,400 with "no RTP port free"); it overlaps the kernel's ephemeral range,
#                  which nothing else here binds UDP in (a port taken is skipped)
#   MEDIA_PORT     first of the SIPp media ports (caller, caller+10 carrier) [19000]
#   STEP_SECONDS   how long each rate is offered [15]
#   HOLD_MS        prepaid call length for `prepaid` [1000]; TEST_CALL_MS [200]
#   ACCOUNTS       pinless accounts seeded [20000] (each account takes one call at a time)
#   RTP=1          the caller streams PCMU (rtp_stream) and the carrier echoes it
#   CARRIER_RING_MS  how long the carrier rings before its 200 [0]
#   DB=postgres    the ledger on PostgreSQL: each step in a fresh schema of POSTGRES_URL
#                  [postgres://postgres@127.0.0.1:5432/test?sslmode=disable: loopback without
#                  TLS, as the switch's default, prefer, does there; sslmode=require measures
#                  it with TLS], seeded the same way; DB=sqlite
#                  (default) copies the SQLite seed
#   POOL_SIZE      the switch's database connections ([database] pool_size) [8]
#   PIPELINE       PostgreSQL: a call's statements pipelined ([database] pipeline) [1]; 0 sends
#                  them one at a time through sqlx's pool
#   PG_DELAY_US    PostgreSQL: the switch reaches it through tests/load/pg_delay.py, which
#                  delays every chunk this many microseconds each way, as a server on another
#                  host would (POSTGRES_URL must name port 5432; the relay listens on
#                  PG_DELAY_PORT [15432]) [0: direct]
#   WRITER_CPU     the CPU of the ledger's and the SQLite writer's threads ([database]
#                  writer_cpu): a number, off or auto [unset: the switch's default, auto]
#   LOG_FILTER     the switch's log filter [warn]; e.g. warn,sqlx::query=debug lists each statement
#   PERF=1         record the switch with `perf record -g` while SIPp runs, into
#                  $LOAD_WORK/<step>.perf (read it with `perf report -i FILE --no-children`)
#   THREADS=1      per thread of the switch, over 5 s from THREADS_AT [3] s after SIPp starts:
#                  CPU, time runnable but waiting for a CPU (schedstat) and context switches
#                  a second (voluntary/involuntary), into the results
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${TALKTIME_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/talktime}
WORK=${LOAD_WORK:-/tmp/talktime-load}
SIP_PORT=${SIP_PORT:-15060}
CARRIER_PORT=${CARRIER_PORT:-15070}
CALLER_PORT=${CALLER_PORT:-15080}
ADMIN_PORT=${ADMIN_PORT:-18088}
RTP_RANGE=${RTP_RANGE:-20000-59999}
MEDIA_PORT=${MEDIA_PORT:-19000}
CARRIER_MEDIA_PORT=$((MEDIA_PORT + 10))
STEP_SECONDS=${STEP_SECONDS:-15}
HOLD_MS=${HOLD_MS:-1000}
TEST_CALL_MS=${TEST_CALL_MS:-200}
ACCOUNTS=${ACCOUNTS:-20000}
RTP=${RTP:-0}
CARRIER_RING_MS=${CARRIER_RING_MS:-0}
KEEP_GOING=${KEEP_GOING:-0}
PAIRS=${PAIRS:-3}
PERF=${PERF:-0}
THREADS=${THREADS:-0}
THREADS_AT=${THREADS_AT:-3}
DB=${DB:-sqlite}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
PIPELINE=${PIPELINE:-1}
PG_DELAY_US=${PG_DELAY_US:-0}
PG_DELAY_PORT=${PG_DELAY_PORT:-15432}
BUFF=(-buff_size 4194304)
TICKS=$(getconf CLK_TCK)
RESULTS="$WORK/results.txt"

SWITCH_TIMEOUT_PID=""
SWITCH_PID=""
CARRIER_TIMEOUT_PID=""

die() { echo "run.sh: $*" >&2; exit 1; }

check_tools() {
    [[ -x $BIN ]] || die "no switch binary at $BIN (cargo build --release -p talktime)"
    command -v sipp >/dev/null || die "sipp not installed (apt-get install sip-tester)"
    command -v sqlite3 >/dev/null || die "sqlite3 not installed (apt-get install sqlite3)"
    [[ $RTP != 1 ]] || command -v python3 >/dev/null || die "RTP=1 needs python3 (writes the PCMU file)"
    mkdir -p "$WORK"
    local port
    for port in "$SIP_PORT" "$CARRIER_PORT" "$CALLER_PORT" "$MEDIA_PORT" $((MEDIA_PORT + 2)) \
        "$CARRIER_MEDIA_PORT" $((CARRIER_MEDIA_PORT + 2)); do
        port_listening "$port" && die "UDP port $port is taken; set the port variables"
    done
    # The switch sets aside a port another process holds (the call that drew it moves), but
    # a measurement wants the whole range: it must be free.
    local taken
    taken=$(ss -Hlun | awk -v low="${RTP_RANGE%-*}" -v high="${RTP_RANGE#*-}" \
        '{ n = split($4, part, ":"); port = part[n] } port >= low && port <= high' | wc -l)
    ((taken == 0)) || die "$taken UDP ports in RTP_RANGE $RTP_RANGE are taken; pick a free range"
    return 0
}

cleanup() {
    stop_carrier
    stop_switch
    remove_postgres_delay
}
trap cleanup EXIT

# PG_DELAY_US: the switch reaches PostgreSQL through a relay (pg_delay.py) that delays
# every chunk that much each way, as a server on another host (one round trip costs twice
# the delay); the seeding and the ledger check go direct. tc netem would do it in the
# kernel, but this machine's kernel has no netem.
add_postgres_delay() {
    ((PG_DELAY_US > 0)) || return 0
    [[ $DB == postgres ]] || die "PG_DELAY_US needs DB=postgres"
    port_listening_tcp "$PG_DELAY_PORT" && die "TCP port $PG_DELAY_PORT is taken; set PG_DELAY_PORT"
    python3 "$(dirname "$0")/pg_delay.py" "$PG_DELAY_PORT" 5432 "$PG_DELAY_US" &
    POSTGRES_DELAY_PID=$!
    sleep 0.5
}

remove_postgres_delay() {
    [[ -n ${POSTGRES_DELAY_PID:-} ]] || return 0
    kill "$POSTGRES_DELAY_PID" 2>/dev/null || true
    POSTGRES_DELAY_PID=""
}

port_listening_tcp() { ss -Hltn "sport = :$1" | grep -q .; }

# The URL the switch is given: through the relay when PG_DELAY_US is set.
switch_database_url() {
    local url=$1
    ((PG_DELAY_US > 0)) && url=${url/:5432\//:$PG_DELAY_PORT\/}
    echo "$url"
}

# ---- the switch -------------------------------------------------------------------------

# Writes the switch configuration: the test number, one forwarding access number (200), one
# carrier (the SIPp UAS), no prompts announced, logs at warn so logging is not measured.
# `[database] writer_cpu` from WRITER_CPU: a number as is, a word quoted, nothing when unset.
writer_cpu_line() {
    case ${WRITER_CPU:-} in
        '') ;;
        *[!0-9]*) echo "writer_cpu = \"$WRITER_CPU\"" ;;
        *) echo "writer_cpu = $WRITER_CPU" ;;
    esac
}

write_config() {
    local file=$1
    cat >"$file" <<EOF
[sip]
test_number = "9999"
test_call_ms = $TEST_CALL_MS

[log]
filter = "${LOG_FILTER:-warn}"

[admission]
calls_per_second_per_source = 10
calls_per_source = 100
max_calls = ${MAX_CALLS:-5000}

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

[paths]
prompts_dir = "$ROOT/prompts"

[demo]
enabled = false

[billing]
default_tariff = "load"

[rtp]
inactivity_timeout_ms = ${RTP_INACTIVITY_MS:-30000}

[database]
pool_size = ${POOL_SIZE:-8}
pipeline = $( ((PIPELINE == 1)) && echo true || echo false)
$(writer_cpu_line)

[ivr]
languages = ["en"]
announce_balance = false
announce_talk_time = false
forwarding_welcome = false

[[access_numbers]]
number = "200"
languages = ["en"]
dial_plan = "default"
forwarding = true
forwarding_welcome = false

[[carriers]]
name = "sipp"
host = "127.0.0.1"
port = $CARRIER_PORT
transport = "udp"
options_interval_ms = 0
invite_timeout_ms = 2000

[[dial_plans]]
name = "default"

[[dial_plans.routes]]
prefix = ""
mode = "priority"
carriers = [{ name = "sipp", priority = 0 }]
EOF
}

port_listening() {
    ss -Hlun "sport = :$1" | grep -q . 
}

# start_switch DATA_DIR: the release switch on loopback, bounded to an hour.
start_switch() {
    local data=$1
    write_config "$data/talktime.toml"
    local database=()
    [[ -f $data/database-url ]] &&
        database=(--database-url "$(switch_database_url "$(cat "$data/database-url")")")
    timeout --signal=TERM 3600 "$BIN" serve --config "$data/talktime.toml" --data-dir "$data" \
        "${database[@]}" --sip-udp "127.0.0.1:$SIP_PORT" --sip-tcp "127.0.0.1:$SIP_PORT" \
        --rtp-ports "$RTP_RANGE" --core-threads "${CORE_THREADS:-1}" >"$data/switch.log" 2>&1 &
    SWITCH_TIMEOUT_PID=$!
    local tries=0
    until port_listening "$SIP_PORT"; do
        tries=$((tries + 1))
        ((tries < 100)) || die "switch did not start: $(tail -5 "$data/switch.log")"
        sleep 0.1
    done
    SWITCH_PID=$(pgrep -P "$SWITCH_TIMEOUT_PID" | head -1)
    [[ -n $SWITCH_PID ]] || die "switch process not found"
}

stop_switch() {
    if [[ -n $SWITCH_TIMEOUT_PID ]]; then
        kill "$SWITCH_TIMEOUT_PID" 2>/dev/null || true
        wait "$SWITCH_TIMEOUT_PID" 2>/dev/null || true
    fi
    SWITCH_TIMEOUT_PID=""
    SWITCH_PID=""
}

# The carrier: SIPp UAS answering every INVITE (ringing 0 ms), the switch hangs up its leg.
start_carrier() {
    local dir=$1 echo=()
    [[ $RTP == 1 ]] && echo=(-rtp_echo)
    timeout --signal=TERM 3600 sipp -sf "$ROOT/tests/sipp/carrier_answer.xml" \
        -i 127.0.0.1 -p "$CARRIER_PORT" -mp "$CARRIER_MEDIA_PORT" -d "$CARRIER_RING_MS" "${echo[@]}" \
        "${BUFF[@]}" -nostdin -max_socket 65000 \
        >"$dir/carrier.out" 2>"$dir/carrier.err" &
    CARRIER_TIMEOUT_PID=$!
    local tries=0
    until port_listening "$CARRIER_PORT"; do
        tries=$((tries + 1))
        ((tries < 50)) || die "carrier SIPp did not start: $(tail -5 "$dir/carrier.err")"
        sleep 0.1
    done
}

stop_carrier() {
    if [[ -n $CARRIER_TIMEOUT_PID ]]; then
        kill "$CARRIER_TIMEOUT_PID" 2>/dev/null || true
        wait "$CARRIER_TIMEOUT_PID" 2>/dev/null || true
    fi
    CARRIER_TIMEOUT_PID=""
}

# UDP datagrams the kernel dropped for full receive buffers, machine-wide (/proc/net/snmp).
udp_drops() {
    awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ { print $6 }' /proc/net/snmp
}

# Datagrams dropped on the switch's own SIP UDP socket (last column of /proc/net/udp).
switch_socket_drops() {
    local hex
    hex=$(printf '%04X' "$SIP_PORT")
    awk -v local="0100007F:$hex" '$2 == local { print $NF }' /proc/net/udp | head -1
}

cpu_ticks() {
    # utime + stime of a process and its children (fields 14 and 15; names have no spaces):
    # Kamailio works in forked processes, Talktime in threads of one.
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" 2>/dev/null); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# ---- SIPp statistics ----------------------------------------------------------------------

# summarize CSV: the -trace_stat file (-fd 1) of one run, printed as key=value pairs.
# steady = median of per-second successful calls over the periods in which calls were both
# being created and completing (warm-up and drain excluded).
summarize() {
    awk -F';' '
        function epoch(text,   parts) { split(text, parts, "\t"); return parts[3] }
        function milliseconds(text,   parts) {
            split(text, parts, ":")
            return (parts[1] * 3600 + parts[2] * 60 + parts[3]) * 1000 + parts[4] / 1000
        }
        NR == 1 {
            for (i = 1; i <= NF; i++) {
                column[$i] = i
                if (!rtd && $i ~ /^ResponseTime[a-z0-9]*\(C\)$/) {
                    rtd = i
                    name = substr($i, 13, length($i) - 15)
                }
                if (name != "" && index($i, "ResponseTimeRepartition" name "_") == 1) {
                    bucket[++buckets] = i
                    label[buckets] = substr($i, length("ResponseTimeRepartition" name "_") + 1)
                }
            }
            next
        }
        {
            now = epoch($column["CurrentTime"])
            if (NR == 2) first = now
            period = now - epoch($column["LastResetTime"])
            created = $column["OutgoingCall(P)"]
            done = $column["SuccessfulCall(P)"]
            if (period > 0.5 && created > 0 && done > 0) {
                rows++
                if (rows > 1) rate[++n] = done / period
            }
            current = $column["CurrentCall"]
            if (current > peak) peak = current
            success = $column["SuccessfulCall(C)"]
            failed = $column["FailedCall(C)"]
            retrans = $column["Retransmissions(C)"]
            elapsed = now - first
            # the setup time (first rtd) as the SIPp histogram, in ms
            histogram = ""
            for (b = 1; b <= buckets; b++)
                if ($bucket[b] > 0) histogram = histogram (histogram == "" ? "" : ",") label[b] ":" $bucket[b]
        }
        END {
            # insertion sort, then the median
            for (i = 2; i <= n; i++) { v = rate[i]; j = i - 1
                while (j > 0 && rate[j] > v) { rate[j + 1] = rate[j]; j-- } rate[j + 1] = v }
            median = n ? (n % 2 ? rate[(n + 1) / 2] : (rate[n / 2] + rate[n / 2 + 1]) / 2) : 0
            printf "steady=%.0f success=%d failed=%d retrans=%d peak_concurrent=%d elapsed=%.1f setup_ms=%s\n",
                median, success, failed, retrans, peak, elapsed, (histogram == "" ? "-" : histogram)
        }' "$1"
}

# thread_snapshot PID: "tid name ticks voluntary involuntary runqueue_ns" for each thread.
thread_snapshot() {
    local task
    for task in /proc/"$1"/task/*; do
        local stat name ticks voluntary involuntary
        stat=$(cat "$task/stat" 2>/dev/null) || continue
        name=${stat#*(}
        name=${name%%)*}
        ticks=$(cut -d' ' -f12,13 <<<"${stat##*) }" | awk '{ print $1 + $2 }')
        voluntary=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$task/status" 2>/dev/null)
        involuntary=$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$task/status" 2>/dev/null)
        # schedstat: time on a CPU, time runnable but waiting for one (ns), time slices
        queued=$(cut -d' ' -f2 "$task/schedstat" 2>/dev/null)
        echo "${task##*/} ${name// /_} $ticks ${voluntary:-0} ${involuntary:-0} ${queued:-0}"
    done
}

# thread_sample PID SECONDS: each thread's CPU, time runnable but waiting for a CPU, and
# context switches a second (voluntary/involuntary) over SECONDS.
thread_sample() {
    local before after
    before=$(thread_snapshot "$1")
    sleep "$2"
    after=$(thread_snapshot "$1")
    awk -v t="$TICKS" -v s="$2" 'NR == FNR { b[$1] = $3 " " $4 " " $5 " " $6; next }
        ($1 in b) { split(b[$1], x, " ")
            cpu = ($3 - x[1]) / t / s * 100; vol = ($4 - x[2]) / s; inv = ($5 - x[3]) / s
            queued = ($6 - x[4]) / 1e7 / s
            if (cpu >= 0.5 || vol >= 50)
                printf "%s cpu=%.0f%% runnable_waiting=%.0f%% switches/s=%.0f/%.0f\n", $2, cpu, queued, vol, inv }' \
        <(echo "$before") <(echo "$after")
}

# run_sipp NAME WALL_SECONDS SIPP_ARGS...: one caller run, switch and SIPp CPU measured
# over the run; appends one line to the results and echoes it.
run_sipp() {
    local name=$1 wall=$2
    shift 2
    local csv="$WORK/$name.csv" load switch_before sipp_ticks start end
    rm -f "$csv" "$WORK/$name.errors.log"
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    switch_before=$(cpu_ticks "$SWITCH_PID")
    local drops_before socket_drops_before
    drops_before=$(udp_drops)
    socket_drops_before=$(switch_socket_drops)
    start=$(date +%s.%N)
    timeout --signal=TERM "$wall" sipp "$@" -i 127.0.0.1 -p "$CALLER_PORT" "${BUFF[@]}" \
        -nostdin -max_socket 65000 -trace_stat -stf "$csv" -fd 1 \
        -trace_err -error_file "$WORK/$name.errors.log" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local sipp_timeout=$!
    local perf_pid=""
    if [[ $PERF == 1 ]]; then
        command -v perf >/dev/null || die "PERF=1 needs perf (apt-get install linux-perf)"
        perf record -q -F 499 -g -p "$SWITCH_PID" -o "$WORK/$name.perf" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    local threads_pid=""
    if [[ $THREADS == 1 ]]; then
        (sleep "$THREADS_AT" && thread_sample "$SWITCH_PID" 5 >"$WORK/$name.threads") &
        threads_pid=$!
    fi
    local sipp_pid=""
    while [[ -z $sipp_pid ]] && kill -0 "$sipp_timeout" 2>/dev/null; do
        sipp_pid=$(pgrep -P "$sipp_timeout" | head -1 || true)
        [[ -z $sipp_pid ]] && sleep 0.05
    done
    # SIPp CPU: sampled until it exits (its /proc entry goes with it).
    sipp_ticks=0
    while kill -0 "$sipp_timeout" 2>/dev/null; do
        [[ -n $sipp_pid ]] && sipp_ticks=$(cpu_ticks "$sipp_pid")
        sleep 0.5
    done
    local status=0
    wait "$sipp_timeout" || status=$?
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    if [[ -n $threads_pid ]]; then
        wait "$threads_pid" 2>/dev/null || true
        sed "s/^/$name thread /" "$WORK/$name.threads" | tee -a "$RESULTS"
    fi
    end=$(date +%s.%N)
    local switch_after
    switch_after=$(cpu_ticks "$SWITCH_PID")
    [[ -f $csv ]] || die "$name: no SIPp statistics (exit $status): $(tail -3 "$WORK/$name.err")"
    local summary cpu sipp_cpu
    summary=$(summarize "$csv")
    cpu=$(awk -v a="$switch_before" -v b="$switch_after" -v t="$TICKS" -v s="$start" -v e="$end" \
        'BEGIN { printf "%.0f", (b - a) / t / (e - s) * 100 }')
    sipp_cpu=$(awk -v b="$sipp_ticks" -v t="$TICKS" -v s="$start" -v e="$end" \
        'BEGIN { printf "%.0f", b / t / (e - s) * 100 }')
    [[ $status == 124 ]] && summary="$summary TIMED_OUT"
    # 503 answers (the switch found no RTP port it could bind) among the failures
    local unavailable
    unavailable=$(grep -c "received 'SIP/2.0 503" "$WORK/$name.errors.log" 2>/dev/null || true)
    summary="$summary failed_503=${unavailable:-0}"
    local drops=$(($(udp_drops) - drops_before))
    local socket_drops=$(($(switch_socket_drops) - socket_drops_before))
    local line="$name $summary switch_cpu=${cpu}% sipp_cpu=${sipp_cpu}% udp_drops=$drops switch_socket_drops=$socket_drops exit=$status load=$load"
    echo "$line" | tee -a "$RESULTS"
    LAST_LINE=$line
}

# Whether the last step passed: no failed calls and at least 90 % of the offered rate.
step_ok() {
    local offered=$1 steady failed
    steady=$(sed -n 's/.* steady=\([0-9]*\).*/\1/p' <<<"$LAST_LINE")
    # the last failed= wins (a prepaid step appends the ledger's verdict)
    failed=$(grep -o ' failed=[0-9]*' <<<"$LAST_LINE" | tail -1 | cut -d= -f2)
    [[ $KEEP_GOING == 1 ]] && return 0
    ((failed == 0)) && ((steady * 10 >= offered * 9))
}

# ---- modes ----------------------------------------------------------------------------

fresh_data() {
    local data="$WORK/data-$1"
    rm -rf "$data"
    mkdir -p "$data"
    echo "$data"
}

mode_options() {
    local rates=("$@")
    ((${#rates[@]})) || rates=(2000 4000 6000 8000 10000 12000 15000 20000)
    local data
    data=$(fresh_data options)
    start_switch "$data"
    for rate in "${rates[@]}"; do
        run_sipp "options-$rate" $((STEP_SECONDS + 30)) 127.0.0.1:"$SIP_PORT" \
            -sf "$ROOT/tests/sipp/options.xml" -r "$rate" -m $((rate * STEP_SECONDS)) \
            -l $((rate * 4))
        step_ok "$rate" || break
    done
    stop_switch
}

mode_testcall() {
    local rates=("$@")
    ((${#rates[@]})) || rates=(100 200 400 600 800 1000 1500 2000)
    local data
    data=$(fresh_data testcall)
    start_switch "$data"
    for rate in "${rates[@]}"; do
        run_sipp "testcall-$rate" $((STEP_SECONDS + 40)) 127.0.0.1:"$SIP_PORT" \
            -sf "$ROOT/tests/sipp/uac_switch_hangs_up.xml" -s 9999 -mp "$MEDIA_PORT" \
            -r "$rate" -m $((rate * STEP_SECONDS)) -l $((rate * 10))
        step_ok "$rate" || break
    done
    stop_switch
}

# The seeded ledger (tariff `load`, ACCOUNTS cards with 1000.00 each, caller IDs
# 1555xxxxxxx, every account forwarded to +1 555 123 4567), built once and copied per step.
seed_ledger() {
    local seed="$WORK/seed-$ACCOUNTS"
    if [[ -f $seed/talktime.sqlite3 && -f $WORK/callers-$ACCOUNTS.csv ]]; then
        return
    fi
    rm -rf "$seed"
    mkdir -p "$seed"
    # 0.60 a minute in one-second blocks; 1000.00 buys far more than any hold.
    printf 'prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n1,USA,0.60,0.10,1,1,0\n' \
        >"$seed/rates.csv"
    "$BIN" tariffs import --data-dir "$seed" --tariff load "$seed/rates.csv" >/dev/null
    "$BIN" cards generate --data-dir "$seed" --name load --count "$ACCOUNTS" --value 1000.00 \
        --tariff load --output "$seed/cards.csv" 2>/dev/null
    sqlite3 "$seed/talktime.sqlite3" >/dev/null <<'EOF'
INSERT INTO caller_ids (number, account_id, created_at_ms)
    SELECT '1555' || printf('%07d', id), id, 0 FROM accounts;
UPDATE accounts SET forward_destination = '0015551234567';
PRAGMA wal_checkpoint(TRUNCATE);
EOF
    {
        echo SEQUENTIAL
        sqlite3 "$seed/talktime.sqlite3" "SELECT number FROM caller_ids ORDER BY account_id"
    } >"$WORK/callers-$ACCOUNTS.csv"
}

prepaid_data() {
    local data
    data=$(fresh_data "$1")
    if [[ $DB == postgres ]]; then
        seed_postgres "$data" "$1"
        echo "$data"
        return
    fi
    cp "$WORK/seed-$ACCOUNTS/talktime.sqlite3" "$data/"
    # The PIN key the seed's hashes were made with (issue 18): another key is refused.
    cp -p "$WORK/seed-$ACCOUNTS/pin.key" "$data/"
    echo "$data"
}

# The caller scenario with the hold filled in, and RTP streaming when RTP=1.
render_caller() {
    local hold=$1 file="$WORK/caller-$1.xml" start="" stop=""
    if [[ $RTP == 1 ]]; then
        write_pcmu_wav "$WORK/pcmu.wav"
        start="<nop><action><exec rtp_stream=\"$WORK/pcmu.wav,-1,0\"/></action></nop>"
        stop='<nop><action><exec rtp_stream="pause"/></action></nop>'
    fi
    sed -e "s|{{HOLD_MS}}|$hold|" -e "s|{{RTP_START}}|$start|" -e "s|{{RTP_STOP}}|$stop|" \
        "$HERE/caller_pinless.xml" >"$file"
    echo "$file"
}

# One second of a 1 kHz-ish PCMU pattern in a WAV (format 7, mu-law), for rtp_stream.
write_pcmu_wav() {
    [[ -f $1 ]] && return
    python3 - "$1" <<'EOF'
import struct, sys
data = bytes([0x80, 0x9f, 0xff, 0x9f, 0x80, 0x1f, 0x7f, 0x1f] * 1000)
header = b"RIFF" + struct.pack("<I", 38 + len(data)) + b"WAVEfmt " + struct.pack(
    "<IHHIIHHH", 18, 7, 1, 8000, 8000, 1, 8, 0) + b"data" + struct.pack("<I", len(data))
open(sys.argv[1], "wb").write(header + data)
EOF
}

# ledger_check DATA: after the switch stopped, what the ledger recorded.
# seed_postgres DATA NAME: a fresh schema for the step, the seed's tariff, cards and caller
# IDs made in it (the SQLite seed is copied; PostgreSQL's is made again, a few seconds).
seed_postgres() {
    local data=$1 schema
    schema="talktime_load_$(tr -c 'a-z0-9\n' '_' <<<"$2")"
    psql -q "$POSTGRES_URL" -c "SET client_min_messages TO warning" -c "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema" \
        >/dev/null
    local separator='?'
    [[ $POSTGRES_URL == *\?* ]] && separator='&'
    echo "$POSTGRES_URL${separator}options[search_path]=$schema" >"$data/database-url"
    echo "$schema" >"$data/database-schema"
    local url
    url=$(cat "$data/database-url")
    "$BIN" tariffs import --data-dir "$data" --database-url "$url" --tariff load \
        "$WORK/seed-$ACCOUNTS/rates.csv" >/dev/null
    "$BIN" cards generate --data-dir "$data" --database-url "$url" --name load \
        --count "$ACCOUNTS" --value 1000.00 --tariff load --output "$data/cards.csv" 2>/dev/null
    psql -q "$POSTGRES_URL" >/dev/null <<EOF
SET search_path TO $schema;
INSERT INTO caller_ids (number, account_id, created_at_ms)
    SELECT '1555' || lpad(id::text, 7, '0'), id, 0 FROM accounts;
UPDATE accounts SET forward_destination = '0015551234567';
ANALYZE;
EOF
}

# ledger_check DATA: counts from the ledger after a step. charges= counts call-charge lines, one
# for each call that cost something (an attempt that cost nothing writes none since 2026-12-04).
ledger_check() {
    if [[ -f $1/database-schema ]]; then
        psql -qAt -F ' ' "$POSTGRES_URL" -c "SET search_path TO $(cat "$1/database-schema")" -c "
        SELECT 'cdrs=' || (SELECT count(*) FROM cdrs),
               'connected=' || (SELECT count(*) FROM cdrs WHERE sip_code = 200),
               'charges=' || (SELECT count(*) FROM transactions WHERE kind = 'call_charge'),
               'open_reservations=' || (SELECT count(*) FROM reservations WHERE state = 'open'),
               'billed_s=' || (SELECT coalesce(sum(billed_seconds), 0) FROM cdrs);"
        return
    fi
    sqlite3 -separator ' ' "$1/talktime.sqlite3" "
        SELECT 'cdrs=' || (SELECT count(*) FROM cdrs),
               'connected=' || (SELECT count(*) FROM cdrs WHERE sip_code = 200),
               'charges=' || (SELECT count(*) FROM transactions WHERE kind = 'call_charge'),
               'open_reservations=' || (SELECT count(*) FROM reservations WHERE state = 'open'),
               'billed_s=' || (SELECT coalesce(sum(billed_seconds), 0) FROM cdrs);"
}

# ledger_latency DATA: the switch's mean time a ledger request took, by kind, and the INVITEs
# it refused, by reason (from /metrics, over the whole step), while it still runs.
ledger_latency() {
    local token
    token=$(cat "$1/admin.token" 2>/dev/null) || return 0
    curl -s -H "authorization: Bearer $token" "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '
        /^talktime_ledger_request_seconds_(sum|count)\{/ {
            match($0, /kind="[a-z]+"/)
            kind = substr($0, RSTART + 6, RLENGTH - 7)
            if ($0 ~ /_sum\{/) sum[kind] = $2; else count[kind] = $2
        }
        /^talktime_calls_refused_total\{/ && $NF > 0 {
            match($0, /reason="[^"]+"/)
            reason = substr($0, RSTART + 8, RLENGTH - 9)
            gsub(/ /, "_", reason)
            refused = refused reason ":" $NF ","
        }
        END {
            for (kind in count) if (count[kind] > 0) {
                means = means sprintf("%s:%.1f,", kind, sum[kind] / count[kind] * 1000)
            }
            sub(/,$/, "", means)
            sub(/,$/, "", refused)
            printf "ledger_ms=%s", means
            if (refused != "") printf " refused=%s", refused
        }'
}

# prepaid_step NAME RATE HOLD_MS CALLS LIMIT
prepaid_step() {
    local name=$1 rate=$2 hold=$3 calls=$4 limit=$5 data scenario
    data=$(prepaid_data "$name")
    scenario=$(render_caller "$hold")
    start_carrier "$data"
    start_switch "$data"
    run_sipp "$name" $((calls / rate + hold / 1000 + 60)) 127.0.0.1:"$SIP_PORT" \
        -sf "$scenario" -s 200 -inf "$WORK/callers-$ACCOUNTS.csv" \
        -mp "$MEDIA_PORT" -r "$rate" -m "$calls" -l "$limit"
    # let the last settles land before reading the ledger
    sleep 2
    local latency
    latency=$(ledger_latency "$data")
    stop_switch
    stop_carrier
    local ledger
    ledger=$(ledger_check "$data")
    echo "$name ledger: $ledger $latency" | tee -a "$RESULTS"
    # The switch answers the caller before the carrier does, so SIPp's success is not enough:
    # a good step has every call connected to the carrier and no reservation left open.
    local success connected open
    success=$(sed -n 's/.* success=\([0-9]*\).*/\1/p' <<<"$LAST_LINE")
    connected=$(sed -n 's/.*connected=\([0-9]*\).*/\1/p' <<<"$ledger")
    open=$(sed -n 's/.*open_reservations=\([0-9]*\).*/\1/p' <<<"$ledger")
    if ((connected < success || open > 0)); then
        LAST_LINE="$LAST_LINE failed=$((success - connected + open))"
        echo "$name verdict: $((success - connected)) answered calls never reached the carrier," \
            "$open reservations left open" | tee -a "$RESULTS"
    fi
}

mode_prepaid() {
    local rates=("$@")
    ((${#rates[@]})) || rates=(100 200 400 600 800 1000 1200 1500)
    seed_ledger
    for rate in "${rates[@]}"; do
        prepaid_step "prepaid-$rate-hold$HOLD_MS" "$rate" "$HOLD_MS" $((rate * STEP_SECONDS)) \
            $((rate * (HOLD_MS / 1000 + 10)))
        step_ok "$rate" || break
    done
}

# hold CALLS:SECONDS: calls arrive at CALLS/SECONDS a second so CALLS are up at once, and
# the plateau lasts STEP_SECONDS. Without RTP keep SECONDS under 30: the switch ends a call
# after 30 s without media. Each call takes two RTP port pairs of RTP_RANGE.
mode_hold() {
    local plans=("$@")
    ((${#plans[@]})) || plans=(200:10 500:20 1000:20 1400:25)
    seed_ledger
    for plan in "${plans[@]}"; do
        local concurrent=${plan%%:*} seconds=${plan##*:}
        local rate=$(((concurrent + seconds - 1) / seconds))
        prepaid_step "hold-$concurrent-${seconds}s" "$rate" $((seconds * 1000)) \
            $((rate * (seconds + STEP_SECONDS))) $((concurrent * 2))
    done
}

# console CALLS: that many prepaid calls held up at once, then the live-calls page read
# PAGE_READS times by a logged-in operator: the page's time (curl's time_total, loopback) and
# the calls it lists. Holds are 25 s: without RTP (RTP=0) the switch ends a call after 30 s of
# silence, as it should.
mode_console() {
    local calls=${1:-1000} hold_s=25 rate=100 name data scenario
    name="console-$calls"
    seed_ledger
    data=$(prepaid_data "$name")
    scenario=$(render_caller $((hold_s * 1000)))
    start_carrier "$data"
    start_switch "$data"
    run_sipp "$name" $((calls / rate + hold_s + 60)) 127.0.0.1:"$SIP_PORT" \
        -sf "$scenario" -s 200 -inf "$WORK/callers-$ACCOUNTS.csv" \
        -mp "$MEDIA_PORT" -r "$rate" -m "$calls" -l $((calls * 2)) &
    local sipp_job=$!
    sleep $((calls / rate + 8))
    local admin="http://127.0.0.1:$ADMIN_PORT" cookie up times
    cookie=$(curl -s -o /dev/null -D - --data-urlencode name=admin \
        --data-urlencode "password=$(cat "$data/admin.password")" "$admin/console/login" |
        sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p')
    # The first read starts the core's copies; the next ones see every call.
    curl -s -o /dev/null -H "cookie: $cookie" "$admin/console/calls"
    sleep 1
    up=$(curl -s -H "cookie: $cookie" "$admin/console/calls" |
        sed -n 's/.*<p id="count">\([0-9]*\) calls up.*/\1/p')
    times=$(for _ in $(seq 1 "${PAGE_READS:-20}"); do
        curl -s -o /dev/null -w '%{time_total} %{size_download}\n' -H "cookie: $cookie" \
            "$admin/console/calls"
    done | sort -n)
    echo "$name calls_listed=$up page_seconds(min/median/max)=$(head -1 <<<"$times" | cut -d' ' -f1)/$(
        sed -n "$(((${PAGE_READS:-20} + 1) / 2))p" <<<"$times" | cut -d' ' -f1)/$(
        tail -1 <<<"$times" | cut -d' ' -f1) page_bytes=$(tail -1 <<<"$times" | cut -d' ' -f2)" |
        tee -a "$RESULTS"
    wait "$sipp_job" || true
    stop_switch
    stop_carrier
}

# memory CALLS RATE: CALLS calls placed at RATE a second, each held until all are up (without
# RTP the switch would end a call after 30 s of silence: the test raises that). The switch's
# VmRSS idle (after start, before the first call) and at the plateau; the difference over the
# calls up is what a live call costs (signalling, billing, media state and buffers).
# SETTLE_S [0]: sample that much later, the calls still up. With SETTLE_S=40 every call's
# INVITE transactions have ended (RFC 6026 keeps them 32 s after the 2xx): what a call of a
# few minutes holds, not what its first half-minute does.
mode_memory() {
    local calls=${1:-10000} rate=${2:-500} settle_s=${SETTLE_S:-0}
    local place_s=$(((calls + rate - 1) / rate))
    local hold_s=$((place_s + 6 + settle_s)) name="memory-$calls" data scenario
    ((place_s < 60)) || die "memory: $calls calls at $rate/s take ${place_s} s to place; keep it under 60 s"
    seed_ledger
    data=$(prepaid_data "$name")
    scenario=$(render_caller $((hold_s * 1000)))
    start_carrier "$data"
    RTP_INACTIVITY_MS=$(((hold_s + 30) * 1000)) MAX_CALLS=$((calls * 2)) start_switch "$data"
    sleep 3
    local idle_kib
    idle_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SWITCH_PID/status")
    run_sipp "$name" $((hold_s + 60)) 127.0.0.1:"$SIP_PORT" \
        -sf "$scenario" -s 200 -inf "$WORK/callers-$ACCOUNTS.csv" \
        -mp "$MEDIA_PORT" -r "$rate" -m "$calls" -l $((calls * 2)) &
    local sipp_job=$!
    sleep $((place_s + 3 + settle_s))
    local up_kib up fds token
    up_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SWITCH_PID/status")
    fds=$(find "/proc/$SWITCH_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    token=$(cat "$data/admin.token")
    up=$(curl -s -H "authorization: Bearer $token" "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk '$1 == "talktime_calls_up" { print $2 }')
    up=${up:-0}
    wait "$sipp_job" || true
    sleep 2
    local after_kib
    after_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SWITCH_PID/status")
    stop_switch
    stop_carrier
    local per_call="n/a"
    ((up > 0)) && per_call=$(((up_kib - idle_kib) * 1024 / up))
    echo "$name calls_up=$up rss_idle_kib=$idle_kib rss_up_kib=$up_kib rss_after_kib=$after_kib" \
        "bytes_per_call=$per_call fds=$fds" | tee -a "$RESULTS"
    echo "$name ledger: $(ledger_check "$data")" | tee -a "$RESULTS"
}

# soak RATE MINUTES: one long prepaid run at a steady rate (half the clean rate by default)
# with the switch's resident memory, open descriptors and the ledger's open reservations
# sampled while it runs: all three must stay flat.
mode_soak() {
    local rate=${1:-300} minutes=${2:-30} sample=${SOAK_SAMPLE_S:-30}
    local seconds=$((minutes * 60)) name="soak-$rate-${minutes}m" data scenario
    seed_ledger
    data=$(prepaid_data "$name")
    scenario=$(render_caller "$HOLD_MS")
    start_carrier "$data"
    start_switch "$data"
    local table="$WORK/soak.tsv"
    printf 'elapsed_s\trss_kib\tfds\topen_reservations\tcdrs\n' >"$table"
    (
        local started=$SECONDS
        while kill -0 "$SWITCH_PID" 2>/dev/null; do
            local rss fds open cdrs
            rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SWITCH_PID/status" 2>/dev/null || echo 0)
            fds=$(find "/proc/$SWITCH_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
            open=$(sqlite3 "$data/talktime.sqlite3" \
                "SELECT count(*) FROM reservations WHERE state = 'open'" 2>/dev/null || echo -)
            cdrs=$(sqlite3 "$data/talktime.sqlite3" "SELECT count(*) FROM cdrs" 2>/dev/null || echo -)
            printf '%s\t%s\t%s\t%s\t%s\n' $((SECONDS - started)) "$rss" "$fds" "$open" "$cdrs" \
                >>"$table"
            sleep "$sample"
        done
    ) &
    local sampler=$!
    run_sipp "$name" $((seconds + 120)) 127.0.0.1:"$SIP_PORT" \
        -sf "$scenario" -s 200 -inf "$WORK/callers-$ACCOUNTS.csv" \
        -mp "$MEDIA_PORT" -r "$rate" -m $((rate * seconds)) -l $((rate * (HOLD_MS / 1000 + 10)))
    sleep 2
    stop_switch
    stop_carrier
    wait "$sampler" 2>/dev/null || true
    echo "$name ledger: $(ledger_check "$data")" | tee -a "$RESULTS"
    # First, middle and last samples, and the largest of each column.
    awk -F'\t' 'NR == 1 { next } { row[++n] = $0
            if ($2 > rss) rss = $2; if ($3 > fds) fds = $3; if ($4 > open) open = $4 }
        END { print "first  " row[1]; print "middle " row[int((n + 1) / 2)]; print "last   " row[n]
              printf "max rss_kib=%d fds=%d open_reservations=%d\n", rss, fds, open }' "$table" |
        tee -a "$RESULTS"
}

# ---- Kamailio beside it ----------------------------------------------------------------

# A stateful proxy relaying every call to the SIPp carrier, as a B2BUA would route it but
# without billing: the peer a prepaid switch's signalling is compared with.
write_kamailio_config() {
    cat >"$1" <<EOF
#!KAMAILIO
debug=0
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:$SIP_PORT
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "dialog.so"
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
        # The load caller sends its BYE without a Route set: the one carrier takes it.
        \$du = "sip:127.0.0.1:$CARRIER_PORT";
        t_relay();
        exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
    t_check_trans();
    if (is_method("INVITE")) { record_route(); dlg_manage(); }
    \$du = "sip:127.0.0.1:$CARRIER_PORT";
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
EOF
}

start_kamailio() {
    local dir=$1
    command -v kamailio >/dev/null || die "kamailio not installed (apt-get install kamailio)"
    write_kamailio_config "$dir/kamailio.cfg"
    timeout --signal=TERM 3600 kamailio -f "$dir/kamailio.cfg" -DD -E -x tlsf -X tlsf \
        -m 512 -M 64 -n 2 >"$dir/kamailio.log" 2>&1 &
    SWITCH_TIMEOUT_PID=$!
    local tries=0
    until port_listening "$SIP_PORT"; do
        tries=$((tries + 1))
        ((tries < 100)) || die "kamailio did not start: $(tail -5 "$dir/kamailio.log")"
        sleep 0.1
    done
    SWITCH_PID=$(pgrep -P "$SWITCH_TIMEOUT_PID" | head -1)
    [[ -n $SWITCH_PID ]] || die "kamailio process not found"
}

# versus RATE...: at each rate the pinless load through Kamailio, then through Talktime.
mode_versus() {
    local rates=("$@")
    ((${#rates[@]})) || rates=(300 600 1000 1500 2000 3000)
    seed_ledger
    local scenario calls limit summary=()
    scenario=$(render_caller "$HOLD_MS")
    for rate in "${rates[@]}"; do
        calls=$((rate * STEP_SECONDS))
        limit=$((rate * (HOLD_MS / 1000 + 10)))
        local data
        data=$(fresh_data "kamailio-$rate")
        start_carrier "$data"
        start_kamailio "$data"
        run_sipp "kamailio-$rate" $((calls / rate + HOLD_MS / 1000 + 60)) 127.0.0.1:"$SIP_PORT" \
            -sf "$scenario" -s 200 -inf "$WORK/callers-$ACCOUNTS.csv" \
            -mp "$MEDIA_PORT" -r "$rate" -m "$calls" -l "$limit"
        local peer=$LAST_LINE
        stop_switch
        stop_carrier
        prepaid_step "talktime-$rate" "$rate" "$HOLD_MS" "$calls" "$limit"
        local ours=$LAST_LINE
        local peer_rate ours_rate peer_cpu ours_cpu ours_failed ratio
        peer_rate=$(sed -n 's/.* steady=\([0-9]*\).*/\1/p' <<<"$peer")
        ours_rate=$(sed -n 's/.* steady=\([0-9]*\).*/\1/p' <<<"$ours")
        peer_cpu=$(sed -n 's/.* switch_cpu=\([0-9]*\)%.*/\1/p' <<<"$peer")
        ours_cpu=$(sed -n 's/.* switch_cpu=\([0-9]*\)%.*/\1/p' <<<"$ours")
        ours_failed=$(grep -o ' failed=[0-9]*' <<<"$ours" | tail -1 | cut -d= -f2)
        ratio=$(awk -v a="${ours_rate:-0}" -v b="${peer_rate:-0}" \
            'BEGIN { printf "%.2f", b ? a / b : 0 }')
        summary+=("$(printf '%7s %13s %13s %13s %13s %10s %6s' "$rate" "${peer_rate:-0}" \
            "${peer_cpu:-0}%" "${ours_rate:-0}" "${ours_cpu:-0}%" "${ours_failed:-0}" "$ratio")")
    done
    {
        printf '%7s %13s %13s %13s %13s %10s %6s\n' offered kamailio_cps kamailio_cpu \
            talktime_cps talktime_cpu tt_failed ratio
        printf '%s\n' "${summary[@]}"
    } | tee -a "$RESULTS"
}

# ab RATE...: the same prepaid steps through BIN_A and BIN_B, alternated, then a table.
mode_ab() {
    local rates=("$@")
    ((${#rates[@]})) || rates=(1500 2000)
    local binary
    for binary in "${BIN_A:-}" "${BIN_B:-}"; do
        [[ -x $binary ]] || die "ab compares two switch binaries: set BIN_A and BIN_B"
    done
    seed_ledger
    local pair side rate name connected refused rows=()
    for ((pair = 1; pair <= PAIRS; pair++)); do
        for side in A B; do
            if [[ $side == A ]]; then
                BIN=$BIN_A CORE_THREADS=${CORES_A:-${CORE_THREADS:-1}}
            else
                BIN=$BIN_B CORE_THREADS=${CORES_B:-${CORE_THREADS:-1}}
            fi
            for rate in "${rates[@]}"; do
                name="ab-$side$pair-$rate"
                prepaid_step "$name" "$rate" "$HOLD_MS" $((rate * STEP_SECONDS)) \
                    $((rate * (HOLD_MS / 1000 + 10)))
                connected=$(grep "^$name ledger:" "$RESULTS" | tail -1 |
                    sed -n 's/.* connected=\([0-9]*\).*/\1/p')
                refused=$(sed -n 's/.* failed_503=\([0-9]*\).*/\1/p' <<<"$LAST_LINE")
                rows+=("$rate $side ${connected:-0} ${refused:-0}")
            done
        done
    done
    printf '%s\n' "${rows[@]}" | awk -v seconds="$STEP_SECONDS" '
        function median(list,    n, i, j, t, v) {
            n = split(list, v, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        { runs[$1, $2] = runs[$1, $2] " " $3; refused[$1, $2] = refused[$1, $2] " " $4
          if (!seen[$1]++) order[++count] = $1 }
        END {
            printf "%8s %8s  %-30s %-24s %s\n", "offered", "binary", "connected, run by run",
                "503s, run by run", "median connected (of offered)"
            for (k = 1; k <= count; k++) {
                rate = order[k]
                for (s = 0; s < 2; s++) {
                    side = s ? "B" : "A"
                    printf "%8s %8s  %-30s %-24s %s (of %d)\n", rate, side,
                        substr(runs[rate, side], 2), substr(refused[rate, side], 2),
                        median(substr(runs[rate, side], 2)), rate * seconds
                }
            }
        }' | tee -a "$RESULTS"
}

main() {
    local mode=${1:-}
    shift || true
    case $mode in
        options | testcall | prepaid | hold | soak | console | memory | versus | ab | all) ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2 ;;
    esac
    check_tools
    add_postgres_delay
    echo "# $(date -u +%FT%TZ) mode=$mode rtp=$RTP db=$DB pipeline=$PIPELINE \
pg_delay_us=$PG_DELAY_US $(nproc) cores" >>"$RESULTS"
    case $mode in
        options) mode_options "$@" ;;
        testcall) mode_testcall "$@" ;;
        prepaid) mode_prepaid "$@" ;;
        hold) mode_hold "$@" ;;
        soak) mode_soak "$@" ;;
        console) mode_console "$@" ;;
        memory) mode_memory "$@" ;;
        versus) mode_versus "$@" ;;
        ab) mode_ab "$@" ;;
        all)
            mode_options
            mode_testcall
            mode_prepaid
            mode_hold
            ;;
    esac
}

main "$@"
