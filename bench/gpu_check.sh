#!/usr/bin/env bash
# The GPU checks of gpt2book in one script, for one CUDA GPU (results in $OUT, default out/gpu):
#   1. the speed of GPT-2 small (both arms of the ablation): one full 524,288-token optimizer step,
#      bf16 autocast + torch.compile + fused AdamW, with bench/train.py;
#   2. the trainer end to end on CUDA (memory-mapped loader with pinned memory, autocast, checkpoints):
#      a run killed with SIGKILL after a checkpoint and resumed, against an uninterrupted run.
# Needs data/shakespeare_char (python data/prepare.py shakespeare_char) for part 2.
set -uo pipefail
OUT=${OUT:-out/gpu}; mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 WANDB_MODE=${WANDB_MODE:-disabled}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } | tee "$OUT/gpu.txt"

for cfg in gpt2-124m gpt2-124m-swiglu-rmsnorm; do
  python3 bench/train.py --config "$cfg" --device=cuda --steps 10 --json "$OUT/bench_$cfg.json" 2>&1 | tail -30
done

D=$(mktemp -d)
ARGS=(--device=cuda --data_dir=data/shakespeare_char --max_steps=600 --eval_interval=200 --checkpoint_interval=100
      --log_interval=10 --sample_tokens=200)
python3 -m gpt2book.train "${ARGS[@]}" --out_dir="$D/ref" > "$OUT/train_ref.log" 2>&1
python3 -m gpt2book.train "${ARGS[@]}" --out_dir="$D/killed" > /dev/null 2>&1 & pid=$!
while [ ! -e "$D/killed/ckpt_0000200.pt" ] && kill -0 $pid 2>/dev/null; do sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null
python3 -m gpt2book.train "${ARGS[@]}" --out_dir="$D/killed" --resume > "$OUT/train_resumed.log" 2>&1
cp "$D/ref/metrics.jsonl" "$OUT/metrics_ref.jsonl"; cp "$D/killed/metrics.jsonl" "$OUT/metrics_resumed.jsonl"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
ref, res = ([json.loads(l) for l in open(f"{out}/metrics_{k}.jsonl")] for k in ("ref", "resumed"))
key = lambda m: (m["step"], "val_loss" in m)
a = {key(m): m.get("loss", m.get("val_loss")) for m in ref}; b = {key(m): m.get("loss", m.get("val_loss")) for m in res}
common = sorted(set(a) & set(b))
diff = max(abs(a[k] - b[k]) for k in common)
print(f"resume on CUDA: {len(common)} common log lines, max |loss difference| {diff:.3g}, "
      f"bitwise equal: {all(a[k] == b[k] for k in common)}; final val loss {[m for m in res if 'val_loss' in m][-1]}")
PY
