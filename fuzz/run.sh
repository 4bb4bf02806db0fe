#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS seconds, starting from the seeds and the
# regression inputs. Exits non-zero when a target crashes or breaks an invariant.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). RUSTC_BOOTSTRAP=1 lets a stable
# toolchain accept the sanitizer flags cargo-fuzz passes. The working corpus grows in
# fuzz/corpus/TARGET/ (not in git), libFuzzer's output goes to fuzz/target/fuzz-TARGET.log, and
# a crashing input lands in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "regressions/$target"
    log="target/fuzz-$target.log"
    echo "fuzzing $target for ${seconds}s, log in fuzz/$log"
    # The seeds and regressions are read-only inputs; new finds go to corpus/$target.
    if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" "regressions/$target" -- \
        -max_total_time="$seconds" -dict=smtp.dict -max_len=8192 -malloc_limit_mb=64 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 80 "$log"
        echo "fuzz target $target failed; the crashing input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb))' "$log"
done
