#!/usr/bin/env bash
# Re-run the benchmarks recorded in docs/benchmarks.md, each one started only when the machine is quiet
# (1-minute load average at most $MAX_LOAD), writing JSON and PNG files to docs/benchmarks/.
# Milvus Lite 2.5 inserts slow down as a collection grows (100k vectors took 561 s here), so its recall and
# scale runs stop at 30k; the server runs go to 100k. Sizes up to 1,000,000 are accepted (--size), and slow.
#
#   bash scripts/bench/run_all.sh            # everything
#   bash scripts/bench/run_all.sh ingest     # one group: ingest, latency, recall, scale
set -euo pipefail
out=docs/benchmarks
corpus=${CORPUS:-/tmp/cairn-bench-corpus}
max_load=${MAX_LOAD:-1.5}
only=${1:-all}
mkdir -p "$out"

quiet() {
    while awk -v max="$max_load" '{exit !($1 > max)}' /proc/loadavg; do
        echo "waiting for a quiet machine: load $(cut -d' ' -f1 /proc/loadavg) > $max_load" >&2
        sleep 20
    done
}
run() { quiet; echo "+ $*" >&2; "$@" > /dev/null; }

[[ -d $corpus ]] || python scripts/bench/build_corpus.py "$corpus"

if [[ $only == all || $only == ingest ]]; then
    run cairn bench ingest "$corpus" --peers --out "$out/ingest-peers.json"
    CAIRN_EMBED_WORKER=false run cairn bench ingest "$corpus" --out "$out/ingest-noworker.json"
fi
if [[ $only == all || $only == latency ]]; then
    run cairn bench latency "$corpus" --clients 8 --seconds 60 --plot "$out/latency.png" --out "$out/latency.json"
    run cairn bench latency "$corpus" --clients 8 --seconds 60 --no-query-cache \
        --plot "$out/latency-nocache.png" --out "$out/latency-nocache.json"
    CAIRN_EMBED_WORKER=false run cairn bench latency "$corpus" --clients 8 --seconds 60 --no-query-cache \
        --plot "$out/latency-nocache-noworker.png" --out "$out/latency-nocache-noworker.json"
    # The same, with documents embedded in this process (no lower-priority worker): the worker's effect.
    CAIRN_EMBED_WORKER=false run cairn bench latency "$corpus" --clients 8 --seconds 60 \
        --plot "$out/latency-noworker.png" --out "$out/latency-noworker.json"
    run cairn bench latency "$corpus" --clients 8 --seconds 60 --http \
        --plot "$out/latency-http.png" --out "$out/latency-http.json"
fi
if [[ $only == all || $only == recall ]]; then
    run cairn bench recall --size 10000 --size 30000 --plot "$out/recall-lite.png" --out "$out/recall-lite.json"
    run cairn bench recall --server --size 10000 --size 100000 \
        --plot "$out/recall-server.png" --out "$out/recall-server.json"
    # 1,000,000 vectors: exact search and the two index families, about an hour on 2 cores.
    run cairn bench recall --server --size 1000000 --index FLAT --index IVF_FLAT --index HNSW \
        --plot "$out/recall-server-1m.png" --out "$out/recall-server-1m.json"
fi
if [[ $only == all || $only == scale ]]; then
    run cairn bench scale --size 1000 --size 10000 --size 30000 --plot "$out/scale-lite.png" --out "$out/scale-lite.json"
    run cairn bench scale --server --size 1000 --size 10000 --size 100000 \
        --plot "$out/scale-server.png" --out "$out/scale-server.json"
fi
