#!/usr/bin/env bash
# THE test command of Chronik (CI runs it through .ci/run).
#
#   scripts/test.sh            every part, in this order:
#     setup    Debian packages (only if missing) and .venv from tests/python/requirements.txt
#     cargo    cargo test --workspace --release (includes t40_cluster: three real processes)
#     build    cargo build --release -p chronik-server
#     suite    kafka-python 3.0.12's own integration tests against a chronik-server
#     harness  tests/python (codecs, consumer group, kill -9 crash, idempotent crash)
#     cluster  tests/python/cluster (3-node clusters: producers through leader kills and SIGSTOP pauses
#              with a checker, membership changes, a rolling restart, a consumer group through a
#              coordinator kill), then kafka-python's suite on a 3-node cluster
#     faults   tests/python/faults: the fault campaign, every node in a network namespace of its own
#              (partitions, one-way and lossy links, pauses, kill -9, quorum loss, churn), each
#              scenario checked record by record; needs root, iproute2 and nftables (setup installs
#              them when run as root; without root the campaign is skipped with the reason)
#   scripts/test.sh suite harness   only the parts named (setup runs first whenever a
#                                   Python part is named; the binary must already exist)
#
# Fails fast: the first failing part stops the run; exit status is non-zero.
# Extra pytest arguments for the Python parts: PYTEST_ARGS="-k zstd" scripts/test.sh harness
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="$REPO_ROOT/.venv"
REQUIREMENTS="tests/python/requirements.txt"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
export CHRONIK_SERVER_BIN="${CHRONIK_SERVER_BIN:-$TARGET_DIR/release/chronik-server}"
read -r -a EXTRA_PYTEST <<<"${PYTEST_ARGS:-}"

ALL_PARTS=(setup cargo build suite harness cluster faults)
declare -a SUMMARY=()
CURRENT=""
CURRENT_START=0
RUN_START=$SECONDS

say() { printf '\n==== %s ====\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

print_summary() {
  local rc=$1
  if [[ -n "$CURRENT" ]]; then
    SUMMARY+=("$(printf '%-8s FAILED  (%ds)' "$CURRENT" $((SECONDS - CURRENT_START)))")
  fi
  printf '\n==== summary (%ds) ====\n' $((SECONDS - RUN_START))
  local line
  for line in "${SUMMARY[@]}"; do printf '  %s\n' "$line"; done
  if [[ $rc -eq 0 ]]; then
    echo "test.sh: all parts passed"
  else
    echo "test.sh: FAILED in part '${CURRENT:-?}' (exit $rc)" >&2
  fi
}
trap 'print_summary $?' EXIT

begin() { CURRENT="$1"; CURRENT_START=$SECONDS; say "$1: $2"; }
end() {
  SUMMARY+=("$(printf '%-8s ok      (%ds)%s' "$CURRENT" $((SECONDS - CURRENT_START)) "${1:+  $1}")")
  CURRENT=""
}

# ---- setup ------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v apt-get >/dev/null || die "missing Debian packages ${missing[*]} and no apt-get"
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages ${missing[*]}: run as root or install them"
  if [[ $APT_UPDATED -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

python_ok() { command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; }

part_setup() {
  begin setup "Python toolchain and .venv"
  if ! python_ok; then
    # Debian's python3 lacks ensurepip unless python3-venv is installed.
    apt_install python3 python3-venv
    python_ok || die "python3 with the venv module is still not usable"
  fi
  # The fault campaign's network namespaces and rules (ip, nft); only root can use them anyway.
  if [[ $(id -u) -eq 0 ]]; then apt_install iproute2 nftables; fi
  # mkfs.ext4 for the disk-full test (which needs root to mount and falls back to tmpfs without it).
  if [[ $(id -u) -eq 0 ]]; then apt_install e2fsprogs; fi
  local want have
  want="$(python3 --version) $(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  have="$(cat "$VENV/.chronik-requirements" 2>/dev/null || true)"
  if [[ ! -x "$VENV/bin/python" || "$want" != "$have" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" \
      || die "pip install -r $REQUIREMENTS failed"
    echo "$want" >"$VENV/.chronik-requirements"
  fi
  "$VENV/bin/python" -c 'import kafka, confluent_kafka, aiokafka, snappy, lz4.frame, zstandard, crc32c, pytest, pytest_timeout' \
    || die ".venv is missing a required module; delete .venv and retry"
  end "$("$VENV/bin/python" -c 'import kafka, confluent_kafka, aiokafka; print("kafka-python", kafka.__version__, "/ aiokafka", aiokafka.__version__, "/ confluent-kafka", confluent_kafka.__version__, "/ librdkafka", confluent_kafka.libversion()[0])')"
}

# ---- cargo ------------------------------------------------------------------

part_cargo() {
  begin cargo "cargo test --workspace --release"
  command -v cargo >/dev/null || die "cargo not found"
  cargo test --workspace --release
  end
}

part_build() {
  begin build "cargo build --release -p chronik-server"
  cargo build --release -p chronik-server
  [[ -x "$CHRONIK_SERVER_BIN" ]] || die "build finished but $CHRONIK_SERVER_BIN is missing"
  end "$CHRONIK_SERVER_BIN"
}

need_binary() {
  [[ -x "$CHRONIK_SERVER_BIN" ]] \
    || die "$CHRONIK_SERVER_BIN not found: run 'scripts/test.sh build' first (or set CHRONIK_SERVER_BIN)"
}

# ---- Python parts -----------------------------------------------------------

part_suite() {
  begin suite "kafka-python 3.0.12 integration tests (deselected: tests/kafka-python-suite/deselected.txt)"
  need_binary
  "$VENV/bin/python" tests/kafka-python-suite/run.py "${EXTRA_PYTEST[@]}"
  end
}

part_harness() {
  begin harness "tests/python harness"
  need_binary
  "$VENV/bin/python" -m pytest tests/python --ignore=tests/python/cluster --ignore=tests/python/faults -v -rA "${EXTRA_PYTEST[@]}"
  end
}

part_cluster() {
  begin cluster "tests/python/cluster (three-node faults)"
  need_binary
  "$VENV/bin/python" -m pytest tests/python/cluster -v -rA "${EXTRA_PYTEST[@]}"
  echo "---- kafka-python's integration suite against a three-node cluster ----"
  "$VENV/bin/python" tests/python/cluster/kafka_python_suite.py
  end
}

part_faults() {
  begin faults "tests/python/faults (fault campaign: nodes on hosts of their own)"
  need_binary
  "$VENV/bin/python" -m pytest tests/python/faults -v -rA "${EXTRA_PYTEST[@]}"
  end
}

# ---- main -------------------------------------------------------------------

parts=("$@")
[[ ${#parts[@]} -eq 0 ]] && parts=("${ALL_PARTS[@]}")
for p in "${parts[@]}"; do
  case "$p" in setup|cargo|build|suite|harness|cluster|faults) ;; *) die "unknown part '$p' (parts: ${ALL_PARTS[*]})" ;; esac
done
# The Python parts need the venv: make sure setup runs first when one is named.
needs_setup=0
for p in "${parts[@]}"; do [[ $p == suite || $p == harness || $p == cluster || $p == faults ]] && needs_setup=1; done
if [[ $needs_setup -eq 1 && " ${parts[*]} " != *" setup "* ]]; then parts=(setup "${parts[@]}"); fi

for p in "${parts[@]}"; do "part_$p"; done
