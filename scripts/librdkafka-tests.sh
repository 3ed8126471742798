#!/usr/bin/env bash
# Run librdkafka's own test suite (the copy shipped in the rdkafka-sys crate) against chronik-server.
#
#   scripts/librdkafka-tests.sh            build (if needed), start a broker, run the selected tests
#   scripts/librdkafka-tests.sh --build    only fetch and build librdkafka and its test-runner
#
# Steps, each idempotent:
#   1. Debian packages the build needs (installed only when missing, and only as root).
#   2. librdkafka source: taken from the cargo registry's rdkafka-sys crate; if it is not there, a
#      throwaway cargo project in the cache dir (outside our workspace) runs `cargo fetch` for it.
#   3. Build a copy in the cache dir: configure --no-download --disable-curl, make libs,
#      make -C tests build (niced: the two cores are shared with Rust builds).
#   4. Start target/release/chronik-server on free loopback ports with its own config and data dir
#      in a temp dir, wait for /admin/health, run each selected test number in its own test-runner
#      process (-Q quick, -E no sockem, -L no broker-less tests) under a timeout, stop the broker by
#      PID, print a pass/fail table. Tests with scenario "noautocreate" get a second broker with
#      auto_create_topics = false.
#
# Environment:
#   LIBRDKAFKA_CACHE     cache dir for the source copy and build     (default: <repo>/.cache/librdkafka)
#   RDKAFKA_SYS_VERSION  rdkafka-sys crate version to take it from   (default below)
#   TESTS                comma-separated test numbers to run         (default: tests/librdkafka/tests.txt)
#   TEST_TIMEOUT_S       wall-clock limit per test number            (default 300)
#   TEST_KAFKA_VERSION   broker version the tests assume             (default 3.0.0: we advertise 3.0's ranges)
#   CHRONIK_SERVER_BIN   broker binary          (default: <repo>/target/release/chronik-server)
#   RESULTS_DIR          where logs and results.tsv go               (default: a new dir under the cache)
#   BUILD_JOBS           make -j for the librdkafka build            (default 2)
#   GROUP_INITIAL_REBALANCE_DELAY_MS  the broker's group_initial_rebalance_delay_ms (default 0, which
#                        keeps the group tests fast; 0113's l_unsubscribe counts rebalances and needs
#                        Kafka's default 3000, with TEST_TIMEOUT_S=600)
#   QUICK                1 adds -Q (quick mode). Off by default: in quick mode every subtest not
#                        marked SUB_TEST_QUICK is skipped, which turns many tests into no-ops that
#                        "pass" in 0 s (e.g. all of 0045).
#
# Exit status: 0 when every selected test passed, was skipped by the test-runner itself or failed as
# listed in tests/librdkafka/known-failures.txt (XFAIL); 1 when any other failed, timed out or the
# broker crashed; 2 on a setup error (build, broker start).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RDKAFKA_SYS_VERSION="${RDKAFKA_SYS_VERSION:-4.10.0+2.12.1}"
LIBRDKAFKA_CACHE="${LIBRDKAFKA_CACHE:-$REPO_ROOT/.cache/librdkafka}"
TEST_TIMEOUT_S="${TEST_TIMEOUT_S:-300}"
TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-3.0.0}"
CHRONIK_SERVER_BIN="${CHRONIK_SERVER_BIN:-$REPO_ROOT/target/release/chronik-server}"
BUILD_JOBS="${BUILD_JOBS:-2}"
[ "${QUICK:-0}" = 1 ] && QUICK=1 || QUICK=""
TEST_LIST_FILE="$REPO_ROOT/tests/librdkafka/tests.txt"
KNOWN_FAILURES_FILE="$REPO_ROOT/tests/librdkafka/known-failures.txt"
# Deadlines in seconds.
BROKER_READY_TIMEOUT_S=60
BROKER_STOP_TIMEOUT_S=15
# Grace period after TEST_TIMEOUT_S before the test-runner gets SIGKILL.
TEST_KILL_AFTER_S=10

SRC_DIR="$LIBRDKAFKA_CACHE/librdkafka-$RDKAFKA_SYS_VERSION"
BUILD_STAMP="$SRC_DIR/.chronik-built"
# rapidjson-dev is optional for librdkafka but its tests use it to check statistics JSON (0053, 0110
# skip themselves without it).
DEB_PACKAGES=(build-essential pkg-config python3 curl liblz4-dev libzstd-dev libsasl2-dev libssl-dev zlib1g-dev rapidjson-dev)
CONFIGURE_ARGS=(--no-download --disable-curl)
# What the build depends on besides the source: a change here rebuilds.
BUILD_SIGNATURE="configure ${CONFIGURE_ARGS[*]}; packages ${DEB_PACKAGES[*]}"

log() { printf '[librdkafka-tests] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

# ---- 1. Debian packages ------------------------------------------------------------------------

ensure_packages() {
    local missing=() p
    for p in "${DEB_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages (install as root): ${missing[*]}"
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---- 2. librdkafka source from the rdkafka-sys crate -------------------------------------------

registry_source() {
    local cargo_home="${CARGO_HOME:-$HOME/.cargo}" d
    for d in "$cargo_home"/registry/src/*/"rdkafka-sys-$RDKAFKA_SYS_VERSION"/librdkafka; do
        [ -f "$d/configure" ] && { printf '%s\n' "$d"; return 0; }
    done
    return 1
}

ensure_source() {
    [ -f "$SRC_DIR/configure" ] && return 0
    local src fetch_dir="$LIBRDKAFKA_CACHE/fetch"
    if ! src="$(registry_source)"; then
        log "fetching rdkafka-sys $RDKAFKA_SYS_VERSION with a throwaway cargo project in $fetch_dir"
        mkdir -p "$fetch_dir/src"
        # `=` pins the exact release; cargo ignores the +build metadata when matching.
        cat >"$fetch_dir/Cargo.toml" <<EOF
[package]
name = "rdkafka-source-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = "=${RDKAFKA_SYS_VERSION%%+*}"

[workspace]
EOF
        echo 'fn main() {}' >"$fetch_dir/src/main.rs"
        (cd "$fetch_dir" && cargo fetch --quiet) || die "cargo fetch of rdkafka-sys failed"
        src="$(registry_source)" || die "rdkafka-sys $RDKAFKA_SYS_VERSION not found in the cargo registry after fetch"
    fi
    log "copying librdkafka source from $src"
    rm -rf "$SRC_DIR.tmp"
    mkdir -p "$LIBRDKAFKA_CACHE"
    cp -a "$src" "$SRC_DIR.tmp"
    mv "$SRC_DIR.tmp" "$SRC_DIR"
}

# ---- 3. Build ----------------------------------------------------------------------------------

ensure_build() {
    if [ -x "$SRC_DIR/tests/test-runner" ] && [ "$(cat "$BUILD_STAMP" 2>/dev/null)" = "$BUILD_SIGNATURE" ]; then
        log "librdkafka already built in $SRC_DIR"
        return 0
    fi
    local start=$SECONDS blog="$LIBRDKAFKA_CACHE/build.log"
    log "building librdkafka and its test-runner (log: $blog)"
    (
        cd "$SRC_DIR"
        nice -n 19 ./configure "${CONFIGURE_ARGS[@]}"
        nice -n 19 make -j"$BUILD_JOBS" libs
        nice -n 19 make -j"$BUILD_JOBS" -C tests build
    ) >"$blog" 2>&1 || { tail -30 "$blog" >&2; die "librdkafka build failed (see $blog)"; }
    printf '%s\n' "$BUILD_SIGNATURE" >"$BUILD_STAMP"
    log "build took $((SECONDS - start)) s"
}

# ---- 4. Broker ---------------------------------------------------------------------------------

BROKER_PID=""
BROKER_DIR=""
BROKER_KAFKA=""

free_ports() {
    # Hold every socket until all are chosen so no port is handed out twice.
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# start_broker <dir> <auto_create_topics true|false>
start_broker() {
    local dir="$1" auto_create="$2" kafka wal raft admin deadline
    mkdir -p "$dir"
    read -r kafka wal raft admin <<<"$(free_ports 4)"
    cat >"$dir/chronik.toml" <<EOF
node_id = 1
data_dir = "$dir/data"
auto_create_topics = $auto_create
# librdkafka's test scenarios (tests/scenarios/*.json) run brokers with num.partitions = 4, and
# tests such as 0012 produce to partitions 0..1 of an auto-created topic.
num_partitions = 4
group_initial_rebalance_delay_ms = ${GROUP_INITIAL_REBALANCE_DELAY_MS:-0}

[bind]
kafka = "127.0.0.1:$kafka"
wal = "127.0.0.1:$wal"
raft = "127.0.0.1:$raft"
admin = "127.0.0.1:$admin"

[advertise]
kafka = "127.0.0.1:$kafka"
wal = "127.0.0.1:$wal"
raft = "127.0.0.1:$raft"
admin = "127.0.0.1:$admin"
EOF
    RUST_LOG="${RUST_LOG:-info}" "$CHRONIK_SERVER_BIN" start --config "$dir/chronik.toml" \
        </dev/null >>"$dir/broker.log" 2>&1 &
    BROKER_PID=$!
    BROKER_DIR="$dir"
    BROKER_KAFKA="127.0.0.1:$kafka"
    deadline=$((SECONDS + BROKER_READY_TIMEOUT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            tail -40 "$dir/broker.log" >&2
            BROKER_PID=""
            die "chronik-server exited during start (log: $dir/broker.log)"
        fi
        if curl -fsS --max-time 2 "http://127.0.0.1:$admin/admin/health" 2>/dev/null | grep -q '"status" *: *"ok"' &&
            (exec 3<>"/dev/tcp/127.0.0.1/$kafka") 2>/dev/null; then
            log "chronik-server pid $BROKER_PID ready on $BROKER_KAFKA (auto_create_topics = $auto_create)"
            return 0
        fi
        sleep 0.2
    done
    tail -40 "$dir/broker.log" >&2
    die "chronik-server not healthy within ${BROKER_READY_TIMEOUT_S}s (log: $dir/broker.log)"
}

stop_broker() {
    [ -n "$BROKER_PID" ] || return 0
    local pid="$BROKER_PID" deadline
    BROKER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + BROKER_STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "chronik-server pid $pid ignored SIGTERM for ${BROKER_STOP_TIMEOUT_S}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# ---- 5. Tests ----------------------------------------------------------------------------------

# Prints "<number> <scenario>" lines for the selected tests.
selected_tests() {
    if [ -n "${TESTS:-}" ]; then
        local t
        for t in ${TESTS//,/ }; do
            # A test listed with a scenario in tests.txt keeps it when chosen through TESTS.
            if grep -Eq "^$t[[:space:]]+[a-z]" "$TEST_LIST_FILE"; then
                grep -E "^$t([[:space:]]|$)" "$TEST_LIST_FILE" | awk '{print $1, ($2 == "" ? "default" : $2)}'
            else
                echo "$t default"
            fi
        done
    else
        grep -Ev '^[[:space:]]*(#|$)' "$TEST_LIST_FILE" | awk '{print $1, ($2 == "" ? "default" : $2)}'
    fi
}

strip_ansi() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\x1b(B//g'; }

# known_failure <number>: prints the reason when the test is in known-failures.txt.
known_failure() {
    awk -v n="$1" '$1 == n { $1 = ""; sub(/^ +/, ""); print; found = 1 } END { exit !found }' \
        "$KNOWN_FAILURES_FILE" 2>/dev/null
}

# emit <number> <name> <state> <secs> <detail>: one row of results.tsv; a failure of a test in
# known-failures.txt becomes XFAIL, a pass XPASS.
emit() {
    local num="$1" name="$2" st="$3" d="$4" rest="$5" reason
    if reason="$(known_failure "$num")"; then
        case "$st" in
            FAILED | TIMEOUT | RUNNING) st=XFAIL; rest="known: $reason -- $rest" ;;
            PASSED) st=XPASS; rest="listed in known-failures.txt but passed" ;;
        esac
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$st" "$d" "$rest" >>"$RESULTS_DIR/results.tsv"
}

# run_one <number> <scenario>: appends rows "<subtest>\t<state>\t<secs>\t<detail>" to results.tsv.
run_one() {
    local num="$1" scenario="$2" out rc start rows detail
    out="$RESULTS_DIR/$num-$scenario.log"
    if [ -z "$BROKER_PID" ] || ! kill -0 "$BROKER_PID" 2>/dev/null; then
        log "broker is down before $num; starting a fresh one"
        printf '%s\t%s\t%s\t%s\n' "(broker)" "RESTARTED" "0" "broker was down before $num ($scenario)" >>"$RESULTS_DIR/results.tsv"
        BROKER_PID=""
        start_broker "$RUN_DIR/broker-$scenario-$num" "$([ "$scenario" = noautocreate ] && echo false || echo true)"
        write_test_conf
    fi
    start=$SECONDS
    set +e
    # The outer braces keep bash's own "Aborted" job notice out of our output.
    { (
        cd "$SRC_DIR/tests"
        TESTS="$num" RDKAFKA_TEST_CONF="$RUN_DIR/test.conf" TEST_KAFKA_VERSION="$TEST_KAFKA_VERSION" \
            LD_LIBRARY_PATH="../src:../src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
            timeout -k "$TEST_KILL_AFTER_S" "$TEST_TIMEOUT_S" ./test-runner ${QUICK:+-Q} -E -L -s "$scenario"
    ) >"$out" 2>&1; } 2>/dev/null
    rc=$?
    set -e
    # Summary rows look like "| 0012_produce_consume | PASSED | 3.210s | <failstr>"; if the
    # summary is printed more than once, the last row of each subtest wins.
    rows="$(strip_ansi <"$out" | awk -F'|' -v n="$num" '
        $2 ~ "^ *"n"_" && NF >= 4 {
            name=$2; st=$3; d=$4; gsub(/ /, "", name); gsub(/ /, "", st); gsub(/[ s]/, "", d)
            rest=""; for (i = 5; i <= NF; i++) rest = rest $i; sub(/^ +/, "", rest)
            if (!(name in row)) order[++k] = name
            row[name] = sprintf("%s\t%s\t%s\t%s", name, st, d, rest)
        }
        END { for (i = 1; i <= k; i++) print row[order[i]] }')"
    # Our limit ran out: timeout(1) exits 124, or 137 after its SIGKILL. The runner also kills itself
    # with exit 137 when a test overruns its own timeout; that one prints a summary first.
    local ours=0
    if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ $((SECONDS - start)) -ge "$TEST_TIMEOUT_S" ]; }; then
        ours=1
    fi
    if [ -n "$rows" ] && [ "$ours" -eq 0 ]; then
        # The failure reason in the summary is short; add where it failed from the "### Test ... failed at" line.
        while IFS=$'\t' read -r name st d rest; do
            # Silent skips (other scenario, local/sockem subtests filtered by -L -E) are noise.
            if [ "$st" = SKIPPED ] && { [ -z "$rest" ] || [ "$rest" = "Filtered due to negative test flags" ]; }; then
                continue
            fi
            [ "$scenario" != default ] && name="$name [$scenario]"
            if [ "$st" = FAILED ]; then
                detail="$(strip_ansi <"$out" | grep -m1 -A1 "Test \"${name%% *}.*failed at" | tr '\n' ' ' | sed 's/ *### */ /g' | cut -c1-400 || true)"
                [ -n "$detail" ] && rest="$rest -- $detail"
            fi
            emit "$num" "$name" "$st" "$d" "$rest"
        done <<<"$rows"
    else
        local state=TIMEOUT
        if [ "$ours" -eq 1 ]; then
            detail="timed out after ${TEST_TIMEOUT_S}s"
        else
            # TEST_FAIL from a librdkafka callback thread aborts the whole runner (exit 134).
            state=FAILED
            detail="test-runner exited $rc without a summary"
        fi
        local last
        last="$(strip_ansi <"$out" | grep -m1 -A1 'failed at' | tr '\n' ' ' | cut -c1-300 || true)"
        [ -z "$last" ] && last="$(strip_ansi <"$out" | tail -3 | tr '\n' ' ' | cut -c1-300 || true)"
        # Name the test that failed, from its "### Test "0011_produce_batch (subtest)" failed at" line.
        local name
        name="$(strip_ansi <"$out" | sed -n 's/^### Test "\([0-9]\{4\}_[A-Za-z0-9_]*\).*/\1/p' | head -1 || true)"
        [ -z "$name" ] && name="$num"
        [ "$scenario" != default ] && name="$name [$scenario]"
        emit "$num" "$name" "$state" "$((SECONDS - start))" "$detail; last output: $last"
    fi
    if [ "$rc" -ne 0 ] && [ -n "$BROKER_PID" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
        log "chronik-server died during $num (log: $BROKER_DIR/broker.log)"
        printf '%s\t%s\t%s\t%s\n' "(broker)" "CRASHED" "0" "chronik-server exited during $num; see $BROKER_DIR/broker.log" >>"$RESULTS_DIR/results.tsv"
    fi
    log "$num ($scenario): rc=$rc in $((SECONDS - start)) s"
}

write_test_conf() {
    cat >"$RUN_DIR/test.conf" <<EOF
bootstrap.servers=$BROKER_KAFKA
# Random topic names: a broker reused across tests never sees a name twice.
test.topic.random=true
EOF
}

print_table() {
    local f="$RESULTS_DIR/results.tsv"
    printf '\n%-52s %-9s %8s  %s\n' "TEST" "RESULT" "SECS" "DETAIL"
    printf '%s\n' "------------------------------------------------------------------------------------------------"
    awk -F'\t' '{ printf "%-52s %-9s %8s  %s\n", $1, $2, $3, $4 }' "$f"
    printf '%s\n' "------------------------------------------------------------------------------------------------"
    awk -F'\t' '$1 != "(broker)" { c[$2]++ } END {
        printf "passed %d, failed %d, timed out %d, known failures (XFAIL) %d, unexpected passes (XPASS) %d, skipped by the runner %d\n",
            c["PASSED"], c["FAILED"] + c["RUNNING"], c["TIMEOUT"], c["XFAIL"], c["XPASS"], c["SKIPPED"] }' "$f"
}

main() {
    local build_only=0
    [ "${1:-}" = "--build" ] && build_only=1
    local t0=$SECONDS
    ensure_packages
    ensure_source
    ensure_build
    [ "$build_only" -eq 1 ] && exit 0

    [ -x "$CHRONIK_SERVER_BIN" ] || die "no broker binary at $CHRONIK_SERVER_BIN; run \`cargo build --release -p chronik-server\`"
    RESULTS_DIR="${RESULTS_DIR:-$LIBRDKAFKA_CACHE/runs/$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$RESULTS_DIR"
    : >"$RESULTS_DIR/results.tsv"
    RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/chronik-librdkafka.XXXXXX")"
    trap 'stop_broker' EXIT
    trap 'stop_broker; exit 130' INT TERM

    local run_start=$SECONDS scenario num current=""
    while read -r num scenario; do
        if [ "$scenario" != "$current" ]; then
            stop_broker
            start_broker "$RUN_DIR/broker-$scenario" "$([ "$scenario" = noautocreate ] && echo false || echo true)"
            write_test_conf
            current="$scenario"
        fi
        run_one "$num" "$scenario"
    done < <(selected_tests | sort -s -k2,2)
    stop_broker

    print_table
    log "setup $((run_start - t0)) s, tests $((SECONDS - run_start)) s; logs in $RESULTS_DIR, broker dirs in $RUN_DIR"
    if awk -F'\t' '$2 == "FAILED" || $2 == "TIMEOUT" || $2 == "RUNNING" || $2 == "CRASHED" { bad = 1 } END { exit !bad }' "$RESULTS_DIR/results.tsv"; then
        exit 1
    fi
}

main "$@"
