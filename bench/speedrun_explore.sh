#!/bin/bash
# Chapter 17's third exploration (issue 26): each candidate change alone on the ladder's last record ("3 layers", then "two-blocks")
# at Muon 0.03 (the rate the fair tests' tuning preferred: bench/speedrun_negatives.sh, whose record_m0.03 runs are
# these candidates' base), on exploration seeds 1337-1339, one thread per run; losses only (the times of a busy machine
# choose nothing). Resumable: a run already in the file is not repeated. The chapter's file is this script's output:
#   bash bench/speedrun_explore.sh nbs/data/speedrun_explore3.csv
# (it ran as two queues at a time.)
set -e
cd "$(dirname "$0")/.."
csv=${1:-out/speedrun/explore3.csv}
x() { name=$1; shift; python bench/speedrun.py explore "$name" --record "3 layers" --seeds 1337,1338,1339 --threads 1 \
        --csv "$csv" --set checkpoint_interval=0 --set plot=false --set muon_lr=0.03 "$@"; }
at() { echo --set max_steps=$1 --set eval_interval=$1; }                       # another step count, evaluated at its end
x L2_1050 --set n_layer=2 $(at 1050)                      # two blocks at the second exploration's 1,050 steps
x value_embeds --set value_embeds=true                    # value embeddings in the first and last block
x wsd65 --set lr_schedule=wsd --set warmdown=0.65         # warm-up, constant, linear warm-down (nanochat's share)
x mom_wu300 --set muon_momentum_warmup=300                # Muon's momentum 0.85 -> 0.95 over 300 steps
x L2_950 --set n_layer=2 $(at 950)                        # two blocks, fewer steps
x L3_760 $(at 760)                                        # three blocks, fewer steps
# the queue was stopped here, during the first of these (its seed 1337 is in the file), once both had lost alone:
# x L2_wsd65_1050 --set n_layer=2 --set lr_schedule=wsd --set warmdown=0.65 $(at 1050)
# x L2_mom_wu300_1050 --set n_layer=2 --set muon_momentum_warmup=300 $(at 1050)
# --- then, the rest of the issue's list, each alone on the confirmed two-block record (whose own runs on these seeds
# are L2_1050 above: the same training, evaluated in smaller batches); this part also ran as two queues
# (the second from the batches on), each into its own file, merged into the chapter's
y() { name=$1; shift; python bench/speedrun.py explore "$name" --record two-blocks --seeds 1337,1338,1339 --threads 1 \
        --csv "$csv" "$@"; }
y 2b_mwd0 --set muon_weight_decay=0                       # Muon's weight decay (today weight_decay's 0.1), off
y 2b_mwd03 --set muon_weight_decay=0.3                    # ... and three times larger
y 2b_split_qkv --set muon_split_qkv=true                  # Q, K and V orthogonalised apart
y 2b_x0_skip --set x0_skip=true                           # the embedding into every block
y 2b_b16 --set batch_size=16 --set muon_lr=0.04 $(at 790)  # larger batches at the same characters, a higher rate
y 2b_b24 --set batch_size=24 --set muon_lr=0.045 $(at 525)
