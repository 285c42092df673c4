#!/bin/bash
# Chapter 17's fair tests of the changes not kept (issue 26): each alone on the ladder's last record ("3 layers",
# 860 steps) on exploration seeds, one thread per run, losses only: every change at the record's Muon rate (0.04) on
# three seeds; the record at 760 and 960 steps (its loss against log(steps), which turns a loss difference into a step
# factor); the untied head's own rates and Muon at 0.03 and 0.055 on seed 1337; then, 0.03 having won there, every
# change and the record at 0.03 on three seeds. Writes nbs/data/speedrun_negatives.csv's runs (51; AMD EPYC AVX2,
# 2026-12-07, beside one job of chapter 13's study). Resumable: a run already in the file is not repeated.
#   bash bench/speedrun_negatives.sh [CSV]
set -e
cd "$(dirname "$0")/.."
csv=${1:-out/speedrun/negatives.csv}
x() { name=$1; seeds=$2; shift 2; python bench/speedrun.py explore "$name" --record "3 layers" --seeds $seeds --threads 1 \
        --csv "$csv" --set checkpoint_interval=0 --set plot=false "$@"; }
three=1337,1338,1339
x record $three
for change in "relu2 --set ffn=relu2" "zero_init --set zero_init=true" "softcap15 --set logit_softcap=15" \
              "unet --set unet_skips=true" "untied --set tie_embeddings=false"; do
  set -- $change; name=$1; shift
  x ${name}_m0.04 $three "$@"
done
for s in 760 960; do x record_$s $three --set max_steps=$s --set eval_interval=$s; done
# an untied head: the embedding's and the head's own AdamW rates (the record's shared matrix: learning_rate 4e-3)
for e in 0.004 0.02; do for h in 0.002 0.008; do
  x untied_e${e}_h$h 1337 --set tie_embeddings=false --set embed_lr=$e --set head_lr=$h
done; done
for lr in 0.03 0.055; do                         # Muon's rate (the blocks' matrices, where these changes act), one seed
  x record_m$lr 1337 --set muon_lr=$lr
  x relu2_m$lr 1337 --set ffn=relu2 --set muon_lr=$lr
  x zero_init_m$lr 1337 --set zero_init=true --set muon_lr=$lr
  x softcap15_m$lr 1337 --set logit_softcap=15 --set muon_lr=$lr
  x unet_m$lr 1337 --set unet_skips=true --set muon_lr=$lr
done
# Muon at 0.03 won on seed 1337 for the record and for every change: the comparison at that rate, on three seeds
for change in "record_m0.03 --set muon_lr=0.03" "relu2_m0.03 --set ffn=relu2 --set muon_lr=0.03" \
              "zero_init_m0.03 --set zero_init=true --set muon_lr=0.03" "softcap15_m0.03 --set logit_softcap=15 --set muon_lr=0.03" \
              "unet_m0.03 --set unet_skips=true --set muon_lr=0.03"; do
  set -- $change; name=$1; shift
  x $name 1338,1339 "$@"
done
x untied_m0.03_e0.004_h0.008 $three --set tie_embeddings=false --set muon_lr=0.03 --set embed_lr=0.004 --set head_lr=0.008
