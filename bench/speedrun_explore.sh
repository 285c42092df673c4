#!/bin/bash
# Chapter 17's third exploration (issue 26): each candidate change alone on the current record (--config=speedrun) at
# Muon 0.03 (the rate the fair tests found better than the record's 0.04: bench/speedrun_negatives.sh, whose
# record_m0.03 runs are these candidates' base), on exploration seeds 1337-1339, one thread per run; losses only (the
# times of a busy machine choose nothing). Resumable: a run already in the file is not repeated.
#   bash bench/speedrun_explore.sh [CSV]
set -e
cd "$(dirname "$0")/.."
csv=${1:-out/speedrun/explore3.csv}
x() { name=$1; shift; python bench/speedrun.py explore "$name" --config speedrun --seeds 1337,1338,1339 --threads 1 \
        --csv "$csv" --set checkpoint_interval=0 --set plot=false --set muon_lr=0.03 "$@"; }
at() { echo --set max_steps=$1 --set eval_interval=$1; }                       # another step count, evaluated at its end
x L2_1050 --set n_layer=2 $(at 1050)                      # two blocks at the exploration's 1,050 steps
x value_embeds --set value_embeds=true                    # value embeddings in the first and last block
x x0_skip --set x0_skip=true                              # the embedding into every block
x wsd65 --set lr_schedule=wsd --set warmdown=0.65         # warm-up, constant, linear warm-down (nanochat's share)
x mom_wu300 --set muon_momentum_warmup=300                # Muon's momentum 0.85 -> 0.95 over 300 steps
x split_qkv --set muon_split_qkv=true                     # Q, K and V orthogonalised apart
x L2_1100 --set n_layer=2 $(at 1100)
x wsd45 --set lr_schedule=wsd --set warmdown=0.45         # modded-nanogpt's cooldown share
x mlr025 --set muon_lr=0.025                              # the rate, one step lower again
x mwd0 --set muon_weight_decay=0                          # Muon's weight decay (today weight_decay, 0.1)
x mwd03 --set muon_weight_decay=0.3
x b16_645 --set batch_size=16 --set muon_lr=0.04 $(at 645) # larger batches at the same characters, a higher rate
x b24_430 --set batch_size=24 --set muon_lr=0.045 $(at 430)
