#!/usr/bin/env bash
# The GPU check: proves (or breaks) the CUDA backend on a bare GPU machine in one unattended run,
# from the repository root or from the kit folder itself, with no network, Bun or Node there.
#
#   make gpu-kit                        # here: build/gpu-kit (under 60 MiB), then on the GPU machine:
#   bash bench/gpu/check.sh             # every stage, report in $OUT (or ./gpu-out)
#   bash bench/gpu/check.sh --stages tests,e2e          # a rerun of some stages
#   bash bench/gpu/check.sh --dry-run   # the rehearsal `make test` runs: emulated CUDA, tiny shapes
#
# Each stage has its own time limit and the whole run a deadline (--deadline-seconds, 420); the
# report (gpu-report.json, gpu-report.md) and the logs (gpu-artifacts.tar.gz) are rewritten after
# every stage. This script unpacks the kit and hands over to check.js, run by the executable's own
# Bun (BUN_BE_BUN=1); if even that cannot start, it writes a report that says why.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [[ -f "$here/check.js" ]]; then kit=$here; repo=$(pwd); else repo=$(cd "$here/../.." && pwd); kit=${VLLM_TS_GPU_KIT:-$repo/build/gpu-kit}; fi
out=${OUT:-$repo/gpu-out}
mkdir -p "$out"
if [[ ! -f "$kit/check.js" ]]; then
  echo "no GPU kit at $kit: run 'make gpu-kit' first" >&2
  exit 2
fi

# The kit's large files are xz-compressed; unpack a copy (xz, or Python's lzma where xz is missing).
work=$(mktemp -d "${TMPDIR:-/tmp}/vllm-ts-gpu-check.XXXXXX")
cp -r "$kit/." "$work/"
unpack() {
  if command -v xz >/dev/null; then xz -d -T0 "$1"; else python3 -c 'import lzma, sys, os; p = sys.argv[1]; open(p[:-3], "wb").write(lzma.open(p).read()); os.remove(p)' "$1"; fi
}
while IFS= read -r -d '' file; do unpack "$file" || { echo "cannot unpack $file" >&2; exit 2; }; done < <(find "$work" -name '*.xz' -print0)
chmod +x "$work/vllm-ts"

# Logs and raw JSON go to $work/raw, packed into $out/gpu-artifacts.tar.gz after every stage.
BUN_BE_BUN=1 "$work/vllm-ts" run "$work/check.js" --kit "$work" --executable "$work/vllm-ts" --repo "$repo" --out "$out" \
  --raw "$work/raw" "$@" 2> >(tee "$out/check-stderr.log" >&2)
status=$?
if [[ ! -s "$out/gpu-report.json" ]]; then
  reason=$(tail -n 20 "$out/check-stderr.log" 2>/dev/null | tr '\n"\\' '   ')
  printf '{"version": 1, "stages": [], "error": "check.js exited with %s before any stage: %s"}\n' "$status" "$reason" > "$out/gpu-report.json"
  printf '# GPU check\n\ncheck.js exited with %s before any stage:\n\n```\n%s\n```\n' "$status" "$(tail -n 20 "$out/check-stderr.log")" > "$out/gpu-report.md"
fi
rm -rf "$work"
exit $status
