#!/usr/bin/env bash
# Everything that needs a GPU, in one call of a lent machine (device `run`, timeout_s ~540; see README "CUDA"):
# 1. the default benchmark set on CUDA alone on the machine (graphed, triton, cudagraph, train rows included),
#    each row's memory read by max_memory_allocated with a graph pool's reserve beside it (benchmarks/memory.py);
# 2. then, side by side: the CUDA-marked tests (compiled triton kernels, graphed, cudagraph copies, the cs231n
#    toy data drawn on CUDA, the CUDA memory meter on a known allocation and on real steps: tests/test_memory.py), the verifier on CUDA (fp32, bf16), the experiments whose study runs on CUDA.
# Writes to $OUT (at most 8 files come back: JSON and CSV are gzipped). Needs the machine's own python3 with
# torch, triton, pytest(-xdist, -benchmark), pandas, matplotlib, numba; run from the project root.
set -u
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$PWD
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
py=python3
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*"; }

{
  stamp env
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $py -c "import torch, triton, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', \
torch.version.cuda, 'triton', triton.__version__, torch.cuda.get_device_name())"
} > "$OUT/env.log" 2>&1

# 1. benchmarks alone on the GPU
timeout "${T_BENCH:-200}" $py -m benchmarks --bench-set default --bench-device cuda --out "$OUT/cuda.json" \
  --benchmark-max-time 0.15 --loop-max-n 256 > "$OUT/bench.log" 2>&1
stamp "bench rc=$?" >> "$OUT/bench.log"
gzip -f "$OUT/cuda.json" 2>/dev/null

# 2. correctness on CUDA, side by side
(
  timeout "${T_TEST:-200}" $py -m pytest tests -m cuda -q -p no:cacheprovider -n 8 --dist loadfile -rfE \
    > "$OUT/tests.log" 2>&1
  stamp "tests rc=$?" >> "$OUT/tests.log"
) &
(
  timeout "${T_VER:-200}" $py -m verification --device cuda --quiet --csv "$OUT/verification_cuda.csv.gz" \
    > "$OUT/verif.log" 2>&1
  stamp "verification fp32 rc=$?" >> "$OUT/verif.log"
  timeout 100 $py -m verification --device cuda --precision bf16 --quiet >> "$OUT/verif.log" 2>&1
  stamp "verification bf16 rc=$?" >> "$OUT/verif.log"
  timeout 100 $py -m verification --device cuda --precision bf16-data --quiet >> "$OUT/verif.log" 2>&1
  stamp "verification bf16-data rc=$?" >> "$OUT/verif.log"
  timeout 100 $py -m verification --device cuda --precision tf32 --quiet >> "$OUT/verif.log" 2>&1
  stamp "verification tf32 rc=$?" >> "$OUT/verif.log"
) &
(
  timeout "${T_REPRO:-200}" $py -m verification.reproduce rumelhart cs231n --device cuda --quiet --out "$OUT/reproduce" \
    > "$OUT/reproduce.log" 2>&1
  stamp "reproduce rc=$?" >> "$OUT/reproduce.log"
  tar czf "$OUT/reproduce.tgz" -C "$OUT" reproduce && rm -rf "$OUT/reproduce"
) &
wait
grep -h "rc=\|passed\|failed\|OK:\|MISMATCH\|reference:" "$OUT"/*.log
stamp done
