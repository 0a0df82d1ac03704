#!/usr/bin/env bash
# Before/after figures for docs/PERFORMANCE.md: two vitrine binaries (an older
# revision and this one) and PyTorch CPU, alternated in rounds on one machine so
# that a noisy neighbour slows all of them alike. Run by hand, never in CI:
#
#   scripts/perf_before_after.sh BASE_REV [ROUNDS]
#
# BASE_REV is built once in a worktree under /tmp (its own target folder).
# PyTorch comes from PYTHONPATH (default /tmp/pyref: pip install --target
# /tmp/pyref torch timm safetensors). Prints one line per case and round, then
# the best and median of each case over the rounds.
set -euo pipefail
base_rev=${1:?usage: scripts/perf_before_after.sh BASE_REV [ROUNDS]}
rounds=${2:-3}
cd "$(dirname "$0")/.."
export PYTHONPATH=${PYTHONPATH:-/tmp/pyref}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR"
# Measured choices would differ between the binaries: time both on their rules.
export VITRINE_CACHE_DIR=$(mktemp -d)
base_dir=/tmp/vitrine-base-$(git rev-parse --short "$base_rev")
if [ ! -x "$base_dir/target/release/vitrine" ]; then
    git worktree add -f "$base_dir" "$base_rev" >/dev/null 2>&1 || true
    (cd "$base_dir" && cargo build --release --quiet)
fi
cargo build --release --quiet
new=target/release/vitrine
old=$base_dir/target/release/vitrine
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; base $(git rev-parse --short "$base_rev"), new $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (uncommitted changes)')"
out=$(mktemp)
# case name | vitrine bench arguments | what to grep from its output
cases=(
    "train built-in b128|bench --train --model models/default --batch 128 --iters 10|median"
    "train vit_tiny b8|bench --train --arch vit_tiny_patch16_224 --batch 8 --iters 3|median"
    "vit_tiny b1|bench --arch vit_tiny_patch16_224 --batch 1 --iters 10|latency per batch"
    "vit_tiny b8|bench --arch vit_tiny_patch16_224 --batch 8 --iters 3|latency per batch"
    "vit_small b1|bench --arch vit_small_patch16_224 --batch 1 --iters 5|latency per batch"
    "vit_small b8|bench --arch vit_small_patch16_224 --batch 8 --iters 3|latency per batch"
    "vit_base b1|bench --arch vit_base_patch16_224 --batch 1 --iters 3|latency per batch"
    "swin_tiny b1|bench --arch swin_tiny_patch4_window7_224 --batch 1 --iters 5|latency per batch"
)
for r in $(seq "$rounds"); do
    for c in "${cases[@]}"; do
        IFS='|' read -r name args grep_for <<<"$c"
        for which in old new; do
            bin=$old
            [ $which = new ] && bin=$new
            # shellcheck disable=SC2086
            ms=$("$bin" $args 2>&1 | grep "$grep_for" | head -1 | sed -E 's/.*median ([0-9.]+) ms.*/\1/')
            echo "round $r | $name | $which | $ms ms" | tee -a "$out"
        done
    done
    python3 scripts/bench_torch.py --iters 10 --models vit_tiny_patch16_224,vit_small_patch16_224,vit_base_patch16_224,swin_tiny_patch4_window7_224 \
        --batches 1,8 2>/dev/null | grep -v '^matmul' | sed "s/^/round $r | torch | /" | tee -a "$out"
    python3 scripts/bench_torch.py --iters 10 --train default:128,vit_tiny_patch16_224:8 2>/dev/null | sed "s/^/round $r | torch | /" | tee -a "$out"
done
echo
echo "best / median over $rounds rounds (ms):"
python3 - "$out" <<'EOF'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"round \d+ \| (.+?) \| (old|new) \| ([0-9.]+) ms", line)
    if m:
        rows.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(float(m.group(3)))
for name, d in rows.items():
    o, n = d.get("old", []), d.get("new", [])
    if o and n:
        print(f"  {name:<20} before {min(o):9.1f} / {statistics.median(o):9.1f}   after {min(n):9.1f} / {statistics.median(n):9.1f}   speed-up {min(o) / min(n):.2f}x (best) {statistics.median(o) / statistics.median(n):.2f}x (median)")
EOF
echo "PyTorch lines (per round) are above, prefixed 'torch'."
