#!/bin/bash
# Chapter 17's fair tests of the changes not kept (issue 26): each alone on the current record (--config=speedrun,
# 860 steps), with its own rate re-tuned, on exploration seeds 1337-1339, one thread per run; losses only.
# The record itself at Muon 0.03, 0.04 and 0.055 is in bench/speedrun_explore.sh (record, mlr03, mlr055).
# Resumable: a run already in the file is not repeated.  Usage: bash bench/speedrun_negatives.sh [CSV]
set -e
cd "$(dirname "$0")/.."
csv=${1:-out/speedrun/negatives.csv}
x() { name=$1; shift; python bench/speedrun.py explore "$name" --config speedrun --seeds 1337,1338,1339 --threads 1 \
        --csv "$csv" --set checkpoint_interval=0 --set plot=false "$@"; }
for lr in 0.03 0.04 0.055; do                    # Muon's rate: the blocks' matrices, where these changes act
  x relu2_m$lr --set ffn=relu2 --set muon_lr=$lr
  x zero_init_m$lr --set zero_init=true --set muon_lr=$lr
  x softcap15_m$lr --set logit_softcap=15 --set muon_lr=$lr
  x unet_m$lr --set unet_skips=true --set muon_lr=$lr
done
# an untied head: the embedding's and the head's own AdamW rates (the record's shared matrix: learning_rate 4e-3)
for e in 0.004 0.02; do for h in 0.002 0.004; do
  x untied_e${e}_h$h --set tie_embeddings=false --set embed_lr=$e --set head_lr=$h
done; done
# the record at other step counts: its loss against log(steps) near 860, which turns a change's loss difference into
# a step factor (the time a change would save) to set against the published gains
for s in 760 960 1060; do
  x record_$s --set max_steps=$s --set eval_interval=$s
done
