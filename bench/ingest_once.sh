#!/bin/sh
# One whole-process ingest for outside timing: empty the graph, then `akg ingest` the three AKG files.
#
#   bench/ingest_once.sh [--empty-only] [AKG_DIR]
#
# Runs against whatever server the environment names (AKG_HOME for the embedded one, or AKG_URI),
# so start one first, e.g. `AKG_HOME=$(mktemp -d) AKG_BOLT_PORT=0 AKG_HTTP_PORT=0 .venv/bin/akg db start`.
# --empty-only does only the emptying step: time it too and subtract, or pair the two runs, to get
# the `akg ingest` figure alone. AKG_DIR defaults to $AKG_DATASET_DIR, else AKG_dataset/.
# The ingest's output is thrown away; its exit status is this script's.
set -eu
cd "$(dirname "$0")/.."
empty_only=0
if [ "${1:-}" = "--empty-only" ]; then empty_only=1; shift; fi
dir="${1:-${AKG_DATASET_DIR:-AKG_dataset}}"
.venv/bin/python -c "from akg.connect import connect; g = connect(); g.write('MATCH (e:Entity) DETACH DELETE e'); g.close()"
[ "$empty_only" = 1 ] && exit 0
exec .venv/bin/akg ingest "$dir/AKG_raw.tsv" "$dir/AKG_pruned.tsv" "$dir/AKG_test.tsv" >/dev/null
