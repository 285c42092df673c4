#!/bin/bash
# Chapter 17's third exploration (issue 26): each candidate change alone on the current record (--config=speedrun),
# on exploration seeds 1337-1339, one thread per run; losses only (the times of a busy machine choose nothing).
# Resumable: a run already in the file is not repeated.  Usage: bash bench/speedrun_explore.sh [CSV]
set -e
cd "$(dirname "$0")/.."
csv=${1:-out/speedrun/explore3.csv}
x() { name=$1; shift; python bench/speedrun.py explore "$name" --config speedrun --seeds 1337,1338,1339 --threads 1 \
        --csv "$csv" --set checkpoint_interval=0 --set plot=false "$@"; }
at() { echo --set max_steps=$1 --set eval_interval=$1; }                       # another step count, evaluated at its end
# the record itself, and the step counts of a two-block record
x record
x L2_1050 --set n_layer=2 $(at 1050)
x L2_1100 --set n_layer=2 $(at 1100)
# the schedule: warm-up, constant, linear warm-down (to min_lr, a tenth)
x wsd45 --set lr_schedule=wsd --set warmdown=0.45
x wsd65 --set lr_schedule=wsd --set warmdown=0.65
# Muon: momentum warm-up 0.85 -> 0.95 over 300 steps; its rate re-tuned; its weight decay swept (today: weight_decay 0.1)
x mom_wu300 --set muon_momentum_warmup=300
x mlr03 --set muon_lr=0.03
x mlr055 --set muon_lr=0.055
x mwd0 --set muon_weight_decay=0
x mwd03 --set muon_weight_decay=0.3
# Q, K and V orthogonalised apart; value embeddings; the embedding into every block
x split_qkv --set muon_split_qkv=true
x value_embeds --set value_embeds=true
x x0_skip --set x0_skip=true
# larger batches at the same characters (860 x 12 sequences), with a higher Muon rate
x b16_645 --set batch_size=16 --set muon_lr=0.05 $(at 645)
x b24_430 --set batch_size=24 --set muon_lr=0.055 $(at 430)
