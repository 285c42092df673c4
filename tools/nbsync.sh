#!/usr/bin/env bash
# Keep notebooks, their paired scripts and the package in step:
#   edit nbs_py/NN_name.py (or the notebook), then run this.
# 1. jupytext --sync: the newer side of each pair wins, cell ids are kept (export markers use them)
# 2. nbdev-clean: strip execution counts and stray metadata (outputs are kept)
# 3. jupytext --sync again: the cleaned notebook is now newer, so the script follows it
# 4. nbdev-export: regenerate gpt2book/*.py (never edit those by hand)
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=("$@"); [ ${#files[@]} -gt 0 ] || files=(nbs_py/[0-9]*.py)
jupytext --sync --quiet "${files[@]}"
nbs=(); for f in "${files[@]}"; do b=$(basename "$f"); nbs+=("nbs/${b%.*}.ipynb"); done
for nb in "${nbs[@]}"; do
  grep -q '"kernelspec"' "$nb" || jupytext --quiet --set-kernel python3 "$nb"
  nbdev-clean --fname "$nb"
done
jupytext --sync --quiet "${nbs[@]}"
nbdev-export
