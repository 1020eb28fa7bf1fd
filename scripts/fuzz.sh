#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ in build-fuzz (clang, ASan, UBSan) and runs each for
# FUZZ_SECONDS (default 60) on a scratch copy of its seed corpus, so the repository's corpus is
# never written to. Prints one line per target; fails when any target crashes, leaks, times out
# or fails a check, after printing the report and how to reproduce it (fuzz/README.md).
# FUZZ_SECONDS=0 only runs the seeds.
# Usage: scripts/fuzz.sh [TARGET...]   (default: signing job_spec; needs install-deps.sh --fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
limit=(-max_total_time="$seconds")
[[ $seconds -eq 0 ]] && limit=(-runs=0)  # libFuzzer reads -max_total_time=0 as "no limit"
build="build-fuzz"
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(signing job_spec)

if [[ ! -f $build/build.ninja ]]; then
  # -O1 without -DNDEBUG: assertions (nlohmann::json's among them) stay on.
  CC=clang CXX=clang++ cmake -S . -B $build -G Ninja -DDLAB_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
fi
cmake --build $build -j "${FUZZ_JOBS:-2}" --target "${targets[@]/%/_fuzzer}"

# The value of libFuzzer's final "stat::NAME: VALUE" line in log.
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

failed=0
for target in "${targets[@]}"; do
  corpus=$(mktemp -d)
  cp fuzz/corpus/"$target"/* "$corpus"/
  seeds=$(find "$corpus" -type f | wc -l)
  log=$build/fuzz-$target.log
  dict=()
  if [[ -f fuzz/$target.dict ]]; then dict=(-dict=fuzz/"$target".dict); fi
  rm -f "$build/$target"-{crash,timeout,leak,oom,slow-unit}-*
  rc=0
  start=$SECONDS
  "$build"/bin/"$target"_fuzzer "${limit[@]}" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/$target-" "${dict[@]}" "$corpus" >"$log" 2>&1 ||
    rc=$?
  summary="fuzz: ${target}_fuzzer: $(final_stat number_of_executed_units "$log") runs in"
  summary+=" $((SECONDS - start)) s, $(final_stat average_exec_per_sec "$log") exec/s, corpus"
  summary+=" $seeds -> $(find "$corpus" -type f | wc -l) inputs, peak RSS"
  summary+=" $(final_stat peak_rss_mb "$log") MB"
  rm -rf "$corpus"
  if [[ $rc -eq 0 ]]; then
    echo "$summary: ok"
    continue
  fi
  failed=1
  tail -n 60 "$log"
  echo "$summary: FAILED (exit $rc; full log in $log)"
  for input in "$build/$target"-{crash,timeout,leak,oom}-*; do
    if [[ -f $input ]]; then echo "  reproduce: $build/bin/${target}_fuzzer $input"; fi
  done
done
exit $failed
