#!/usr/bin/env bash
# GPU checks for a lent device (never in CI). One prepared run, ~8 minutes on one H100:
#   1. the conformance matrix on CUDA in bf16: log-probs and LoRA gradients of every family against its own HF forward
#      (tolerance: 0.1 nats per sequence sum, gradients 0.05 of the largest entry — bf16 rounds both paths differently;
#      fp32 on CUDA is held to the CPU's 1e-5 by running the matrix again in float32);
#   2. which SDPA kernels accept the packed layout's masked, grouped-query calls;
#   3. the training benchmarks against stock trl (DPO on a random ~1.1B-parameter Llama, SFT on SmolLM2; bf16) and
#      the generation benchmark against plain `generate` (SmolLM2, bf16), back to back;
#   4. where vLLM is installed, the vLLM sampling backend against align's decode loop (scripts/vllm_check.py).
# Usage: bash scripts/gpu_check.sh [OUT_DIR]      (DEVICE=cpu SKIP_BENCH=1 checks the script itself on a CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-runs/gpu_check}}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python}
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
$PY -c "import torch, transformers, trl, peft; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__)" | tee "$OUT/versions.txt"
$PY scripts/conformance_matrix.py --device "$DEVICE" --dtype float32 --max-logp-diff 1e-5 --max-grad-diff 1e-4 | tee "$OUT/matrix_fp32.md"
$PY scripts/conformance_matrix.py --device "$DEVICE" --dtype bfloat16 --max-logp-diff 0.1 --max-grad-diff 0.05 | tee "$OUT/matrix_bf16.md"
$PY scripts/sdpa_kernels.py --device "$DEVICE" --dtype bfloat16 | tee "$OUT/sdpa_kernels.txt"
if [ -z "${SKIP_BENCH:-}" ]; then
  MODEL_DIR="$OUT/llama-1b-random"
  $PY -c "from align.models import build_tiny_model; build_tiny_model('$MODEL_DIR', vocab_size=8192, hidden_size=2048, num_layers=16, num_heads=32, num_kv_heads=8, intermediate_size=8192)"
  $PY scripts/bench_train.py --model "$MODEL_DIR" --steps 6 --batch-size 8 --max-length 512 --repeats 2 --output "$OUT/bench.jsonl" | tee "$OUT/bench.txt"
  $PY scripts/bench_train.py --mode sft --steps 8 --repeats 2 --output "$OUT/bench_sft.jsonl" | tee "$OUT/bench_sft.txt"
  $PY scripts/bench_generate.py --dtype bfloat16 --count 48 --repeats 2 --output "$OUT/bench_generate.jsonl" | tee "$OUT/bench_generate.txt" || true
fi
$PY scripts/vllm_check.py --output "$OUT/vllm_check.json" | tee "$OUT/vllm_check.txt"
