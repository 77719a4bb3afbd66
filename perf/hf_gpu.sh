#!/usr/bin/env bash
# The `hf_llama` module's `full` profile (benches/hf_llama.py) on a GPU machine without
# network, through perf/suite_gpu.sh; then the CSV run folders and the markdown tables.
#
#   cd .gpu && bash perf/hf_gpu.sh OUTDIR [extra `commitbench run` options]
#
# Needs transformers on the machine (the GPU machines have it; otherwise carry its
# wheels, and those of tokenizers, safetensors and huggingface-hub, in $WHEELS) and,
# for the flash_attention_2 cases, flash_attn (skipped with the reason without it).
# FILTER is the one `--filter` pattern (default hf_llama: both benches). The default
# grid takes several minutes; under the device's 10-minute limit per command, run the
# two benches in two calls, and the project's decoder, for the table beside it, in a
# third on the same GPU, then make the tables from the folders together:
#
#   FILTER=hf_llama.generate bash perf/hf_gpu.sh $OUT/generate
#   FILTER=hf_llama.variants bash perf/hf_gpu.sh $OUT/variants
#   FILTER=generation.decode bash perf/hf_gpu.sh $OUT/decode
#   python3 perf/hf_tables.py $OUT/generate $OUT/variants $OUT/decode
#
# Writes OUTDIR/run.log, the run folders (manifest.json, results-*.csv, metrics-*.csv
# with every raw sample, device_samples-*.csv) and OUTDIR/tables.md.
set -u
OUTDIR=$(mkdir -p "$1" && cd "$1" && pwd) || exit 1
shift
cd "$(dirname "$0")/.."
PY=${PY:-python3}
# Informative only: wheels in $WHEELS are installed later, by gpu_env.sh.
$PY -c 'import transformers; print("transformers", transformers.__version__)' 2>/dev/null \
    || echo "transformers not importable yet: without its wheels the cases are skipped"
$PY -c 'import flash_attn; print("flash_attn", flash_attn.__version__)' 2>/dev/null \
    || echo "flash_attn not installed: the flash_attention_2 cases will be skipped"

bash perf/suite_gpu.sh "$OUTDIR" --profile full --filter "${FILTER:-hf_llama}" "$@"
rm -f "$OUTDIR/results.tgz"
cp -r /tmp/suite-results/. "$OUTDIR"/ || exit 1
$PY perf/hf_tables.py "$OUTDIR" | tee "$OUTDIR/tables.md"
