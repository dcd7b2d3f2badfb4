#!/usr/bin/env bash
# Serving before/after, interleaved: the tree at git revision REV against the working tree, on the
# same machine in one session (its speed varies between sessions and from minute to minute, so
# only interleaved rounds compare; docs/PERFORMANCE.md). Each round runs, for REV then this tree:
#   pyfunc (batches of 256 + one-post latency), HTTP with 1 server worker, HTTP with 2 workers,
# then, for this tree only, HTTP with 1 worker and 2 clients.
# REV runs from a git worktree with its own params.yaml, serve.py and package (PYTHONPATH), the
# pipeline's data/ and models/ linked in, and uvicorn on h11 + asyncio (UVICORN_HTTP/UVICORN_LOOP)
# as a venv without httptools/uvloop would run it. When REV's features differ from this tree's, its
# model does too: BEFORE_ARTIFACTS names a folder holding REV's own models/ (model.keras,
# temperature.json) and data/fused/ (e.g. copied after `git checkout REV && dvc checkout`).
#
#   benchmarks/serve_rounds.sh ccf6fc0 3      # JSON in reports/benchmarks/rounds/<tree>_<setup>_<round>.json
#   BEFORE_ARTIFACTS=/tmp/v3 benchmarks/serve_rounds.sh e19a6f1 3
set -euo pipefail
rev=${1:?usage: benchmarks/serve_rounds.sh REV [ROUNDS]}
rounds=${2:-3}
repo=$(git rev-parse --show-toplevel)
python=$repo/.venv/bin/python
out=$repo/reports/benchmarks/rounds
mkdir -p "$out"
tree=$(mktemp -d)/before
git -C "$repo" worktree add --detach "$tree" "$rev" >/dev/null
trap 'git -C "$repo" worktree remove --force "$tree"' EXIT
# data/ and models/ exist in the worktree (git tracks a README and JSON files there): link each
# pipeline output into them, or serve.py finds no model and benchmarks a synthetic one.
artifacts=${BEFORE_ARTIFACTS:-$repo}
ln -s "$repo/data/raw" "$tree/data/raw"
ln -s "$repo/data/validated" "$tree/data/validated"
ln -s "$artifacts/data/fused" "$tree/data/fused"
ln -s "$artifacts/models/model.keras" "$tree/models/model.keras"
cp "$artifacts/models/temperature.json" "$tree/models/temperature.json"

run() {  # tree setup round serve.py-args...
  local which=$1 setup=$2 round=$3
  shift 3
  local json=$out/${which}_${setup}_${round}.json
  if [ "$which" = before ]; then
    (cd "$tree" && UVICORN_HTTP=h11 UVICORN_LOOP=asyncio PYTHONPATH=$tree/src \
      "$python" benchmarks/serve.py --mixes text+image+audio "$@" --out "$json" >"$json.log" 2>&1)
  else
    (cd "$repo" && "$python" benchmarks/serve.py --mixes text+image+audio "$@" --out "$json" >"$json.log" 2>&1)
  fi
  grep -q '"model": "pipeline outputs' "$json" || { echo "$json: not the pipeline's model" >&2; exit 1; }
  echo "$(date +%T) $which $setup round $round: $json"
}

for round in $(seq 1 "$rounds"); do
  for which in before after; do
    run "$which" pyfunc "$round" --single 20 --batches 3
    run "$which" h1 "$round" --single 20 --batches 4 --http 1 --no-pyfunc
    run "$which" h2 "$round" --single 20 --batches 4 --http 2 --no-pyfunc
  done
  run after h1c2 "$round" --single 5 --batches 6 --http 1 --clients 2 --no-pyfunc
done
