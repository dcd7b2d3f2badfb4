#!/usr/bin/env bash
# Serving before/after, interleaved: the tree at git revision REV against the working tree, on the
# same machine in one session (its speed varies between sessions and from minute to minute, so
# only interleaved rounds compare; docs/PERFORMANCE.md). Each round runs, for REV then this tree:
#   pyfunc (batches of 256 + one-post latency), HTTP with 1 server worker, HTTP with 2 workers,
# then HTTP with 1 worker and 2 clients (for REV too when its serve.py has --clients).
# REV runs from a git worktree with its own params.yaml, serve.py and package (PYTHONPATH), the
# pipeline's data/ and models/ linked in, and, when REV predates httptools/uvloop, uvicorn on h11 +
# asyncio (UVICORN_HTTP/UVICORN_LOOP) as its venv would run it. When REV's features differ from this tree's, its
# model does too: BEFORE_ARTIFACTS names a folder holding REV's own models/ (model.keras,
# temperature.json) and data/fused/ (e.g. copied after `git checkout REV && dvc checkout`).
#
#   benchmarks/serve_rounds.sh ccf6fc0 3      # JSON in reports/benchmarks/rounds/<tree>_<setup>_<round>.json
#   BEFORE_ARTIFACTS=/tmp/v3 SETUPS="h2 h1c2" benchmarks/serve_rounds.sh ad12233 3
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
cp "$artifacts/models/model.keras" "$tree/models/model.keras"  # MLflow refuses a link that leads out of the model folder
cp "$artifacts/models/temperature.json" "$tree/models/temperature.json"

# A REV from before httptools/uvloop were dependencies runs uvicorn as its venv would have: h11 + asyncio.
if git -C "$repo" show "$rev:pyproject.toml" | grep -q httptools; then
  before_http=auto before_loop=auto
else
  before_http=h11 before_loop=asyncio
fi
# Two clients need a serve.py with --clients; older revisions have none.
if git -C "$repo" show "$rev:benchmarks/serve.py" | grep -q -- "--clients"; then
  two_clients="before after"
else
  two_clients=after
fi

run() {  # tree setup round serve.py-args...
  local which=$1 setup=$2 round=$3
  shift 3
  local json=$out/${which}_${setup}_${round}.json
  if [ "$which" = before ]; then
    (cd "$tree" && UVICORN_HTTP=$before_http UVICORN_LOOP=$before_loop PYTHONPATH=$tree/src \
      "$python" benchmarks/serve.py --mixes text+image+audio "$@" --out "$json" >"$json.log" 2>&1)
  else
    (cd "$repo" && "$python" benchmarks/serve.py --mixes text+image+audio "$@" --out "$json" >"$json.log" 2>&1)
  fi
  grep -q '"model": "pipeline outputs' "$json" || { echo "$json: not the pipeline's model" >&2; exit 1; }
  echo "$(date +%T) $which $setup round $round: $json"
}

# SETUPS picks a subset (default: all four). With two clients a run needs many batches: each new
# connection goes to whichever server worker accepts it first, so over 4 batches one worker can
# get most of them (v4, 2 workers: 156-198 posts/s over 4 batches, 211-239 over 12).
setups=${SETUPS:-pyfunc h1 h2 h1c2}
wanted() { [[ " $setups " == *" $1 "* ]]; }
for round in $(seq 1 "$rounds"); do
  for which in before after; do
    if wanted pyfunc; then run "$which" pyfunc "$round" --single 20 --batches 3; fi
    if wanted h1; then run "$which" h1 "$round" --single 20 --batches 4 --http 1 --no-pyfunc; fi
    if wanted h2; then run "$which" h2 "$round" --single 5 --batches 12 --http 2 --no-pyfunc; fi
  done
  for which in $two_clients; do
    if wanted h1c2; then run "$which" h1c2 "$round" --single 5 --batches 12 --http 1 --clients 2 --no-pyfunc; fi
  done
done
