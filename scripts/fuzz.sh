#!/usr/bin/env bash
# Fuzzes vitrine's input readers with libFuzzer on the stable toolchain (libfuzzer-sys,
# LLVM SanitizerCoverage through RUSTFLAGS, debug assertions and overflow checks on).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      run each target for SECONDS (default 60)
#   scripts/fuzz.sh --runs N [TARGET...]       run each target for N inputs
#
# Targets (fuzz/fuzz_targets/): model (config.json + safetensors, hub folder and bare
# file), image (decode + eval and training preprocessing), data (IDX, CIFAR-10/100,
# ImageFolder), checkpoint (train_state.json + model + optimizer, `--resume`).
# Limits per input: 2 s on this instrumented build (coverage counters on every branch and
# comparison, overflow checks: about 5x slower than release, so under 1 s in release; inputs
# near the limit are replayed in release by tests/fuzz_regressions.rs, which requires < 1 s),
# 1 GiB of RSS, 1 GiB per allocation. The image and data harnesses decode at most 3 M pixels
# (vitrine::fuzz::MAX_PIXELS; the readers allow 32 M, timed in release by the same test),
# so that the time limit flags superlinear work, not large images. Seeds come from the test
# fixtures (target/fuzz/seeds); the corpus grows in target/fuzz/corpus/TARGET; a crash
# is saved as target/fuzz/artifacts/TARGET/crash-* and fails the script (reproduce
# with `target/fuzz/<host triple>/release/TARGET FILE`); copy it into fuzz/regressions/TARGET
# once fixed: tests/fuzz_regressions.rs and this script replay those first.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=60 runs=""
if [ "${1:-}" = "--runs" ]; then runs=$2; shift 2
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(model image data checkpoint)

source scripts/deps.sh
vitrine_deps g++ "libFuzzer's C++ sources (built by libfuzzer-sys)" python3 "the seed writer, scripts/fuzz_seeds.py"
export CARGO_TARGET_DIR="$PWD/target/fuzz"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
# An explicit --target keeps RUSTFLAGS (the coverage instrumentation) off build scripts
# and proc macros, which run on the host without libFuzzer's runtime.
host=$(rustc -vV | sed -n 's/^host: //p')
(cd fuzz && cargo build --release --quiet --bins --target "$host")
bin="$CARGO_TARGET_DIR/$host/release"
python3 scripts/fuzz_seeds.py "$CARGO_TARGET_DIR/seeds"

# Largest input per target: model files are large; images, data files and checkpoints need less.
declare -A max_len=([model]=2000000 [image]=262144 [data]=262144 [checkpoint]=65536)
fail=0
for t in "${targets[@]}"; do
  corpus="$CARGO_TARGET_DIR/corpus/$t" artifacts="$CARGO_TARGET_DIR/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  limit=(-max_total_time="$secs")
  [ -z "$runs" ] || limit=(-runs="$runs")
  log="$CARGO_TARGET_DIR/$t.log"
  # First the inputs that once crashed it (fuzz/regressions/TARGET), with overflow checks on.
  if compgen -G "fuzz/regressions/$t/*" >/dev/null && ! "$bin/$t" fuzz/regressions/$t/* >"$log" 2>&1; then
    fail=1
    echo "fuzz: $t fails on a regression input again; the log is in $log" >&2
    continue
  fi
  echo "fuzz: $t (${runs:-$secs s}${runs:+ inputs})"
  if ! "$bin/$t" "$corpus" "$CARGO_TARGET_DIR/seeds/$t" "${limit[@]}" \
      -timeout=2 -rss_limit_mb=1024 -malloc_limit_mb=1024 -max_len="${max_len[$t]}" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    fail=1
    echo "fuzz: $t FAILED; the input is in $artifacts, the log in $log:" >&2
    grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -20 >&2 || true
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|stat::slowest_unit_time_sec" "$log" | sed "s/^/fuzz: $t /" || true
done
exit $fail
