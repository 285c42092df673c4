"""Chapter 15's lm-evaluation-harness WikiText convention, checked against lm_eval's own code.

Needs `pip install lm_eval` (not a dependency of the book) and WikiText-2 raw in $GPT2BOOK_MIRROR/wikitext-2-raw/ (or
the cache). lm_eval's package imports pull in its whole stack, so only the modules needed are loaded from their files:
`lm_eval/utils.py` (`get_rolling_token_windows`, `make_disjoint_window`) and `lm_eval/tasks/wikitext/
preprocess_wikitext.py` (`wikitext_detokenizer`, `process_results`). For each split it compares, page by page:
the detokenized text (ours against lm_eval's); the windows at max_length 1,024 and 64 (lm_eval's pairs, made disjoint
and truncated as `HFLM._loglikelihood_tokens` does: input (context + continuation)[-(max_length+1):][:-1], scoring the
last len(continuation) positions) against `harness_windows`; on a small random GPT-2-vocabulary model of block_size 64,
each page's NLL scored through lm_eval's windows against `harness_wikitext`'s (the first --pages pages of each split:
a 50,257-way softmax at every token is slow on a CPU); and the three figures aggregated over those pages with
`process_results` and lm_eval's weighted mean (`weighted_perplexity`, `bits_per_byte` in lm_eval/api/metrics.py:
exp(-sum ll / sum n), -sum ll / sum n / ln 2). Writes nbs/data/wikitext_harness_check.json. A few minutes on a CPU.

    python bench/wikitext_harness.py [--splits test valid] [--pages 8] [--out nbs/data/wikitext_harness_check.json]
"""
import importlib.metadata
import importlib.util
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from gpt2book.common import CommandError, Parser, machine_info, positive_int, user_errors
from gpt2book.eval import harness_wikitext, harness_windows, wikitext_detokenize, wikitext_documents, wikitext_path
from gpt2book.files import atomic_write_text
from gpt2book.model import GPT, GPTConfig
from gpt2book.tokenizer import GPT2Tokenizer

PROG = "python bench/wikitext_harness.py"


def lm_eval_module(rel):
    "A module of the installed lm_eval, loaded from its file without importing the package."
    spec = importlib.util.find_spec("lm_eval")
    if spec is None:
        raise CommandError("lm_eval is not installed: pip install lm_eval (it is not one of the book's dependencies)")
    path = Path(spec.submodule_search_locations[0]) / rel
    mod_spec = importlib.util.spec_from_file_location("lm_eval_" + path.stem, path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def lm_eval_windows(utils, tokens, prefix, max_length):
    "(input ids, predicted ids) of each window, as HFLM.loglikelihood_rolling and _loglikelihood_tokens feed them."
    out = []
    for ctx, cont in map(utils.make_disjoint_window,
                         utils.get_rolling_token_windows(tokens, prefix, max_seq_len=max_length, context_len=1)):
        out.append(((ctx + cont)[-(max_length + 1):][:-1], cont))
    return out


@torch.no_grad()
def lm_eval_page_ll(model, pairs):
    "A page's log-likelihood through lm_eval's windows: each input fed, its last len(continuation) positions scored."
    ll = 0.0
    for inp, cont in pairs:
        logits, _ = model(torch.tensor([inp]))                                   # (1, T, V)
        lp = F.log_softmax(logits[0, -len(cont):].double(), -1)
        ll += float(lp.gather(1, torch.tensor(cont)[:, None]).sum())
    return ll


def check_split(split, utils, pw, tok, model, n_pages):
    raw = wikitext_path(split).read_text(encoding="utf-8")
    pages = wikitext_documents(raw)
    detok_equal = all(wikitext_detokenize(p) == pw.wikitext_detokenizer({"page": p}) for p in pages)
    tokens = [tok.encode(pw.wikitext_detokenizer({"page": p})) for p in pages]
    windows_equal, n_all = {}, len(pages)
    for L in (1024, 64):
        ok = True
        for t in tokens:
            ids = [tok.eot] + t
            ours = [(ids[lo:hi], ids[a:hi + 1]) for lo, hi, a in harness_windows(len(ids), 1, L)]
            ok &= ours == lm_eval_windows(utils, t, tok.eot, L)
        windows_equal[str(L)] = bool(ok)
    pages, tokens = pages[:n_pages], tokens[:n_pages]            # scoring: the first n_pages pages (CPU time)
    ours = harness_wikitext(model, tok, "\n".join(pages), batch_rows=8)
    assert wikitext_documents("\n".join(pages)) == pages
    lls = [lm_eval_page_ll(model, lm_eval_windows(utils, t, tok.eot, 64)) for t in tokens]
    gaps = [abs(-ll - nll) / max(1.0, abs(ll)) for ll, nll in zip(lls, ours["per_page"])]
    res = [pw.process_results({"page": p}, (ll,)) for p, ll in zip(pages, lls)]
    agg = {k: sum(r[k][0] for r in res) / sum(r[k][1] for r in res) for k in res[0]}   # lm_eval's weighted_mean
    ref = dict(word_perplexity=math.exp(-agg["word_perplexity"]), byte_perplexity=math.exp(-agg["byte_perplexity"]),
               bits_per_byte=-agg["bits_per_byte"] / math.log(2))
    return dict(pages=n_all, scored_pages=len(pages), tokens=ours["tokens"], detok_equal=detok_equal, windows_equal=windows_equal,
                max_rel_page_gap=max(gaps), ours={k: ours[k] for k in ("words", "bytes", "nll", "word_ppl", "byte_ppl",
                                                                          "bits_per_byte")}, lm_eval=ref)


def main(argv=None):
    ap = Parser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("--splits", nargs="+", default=["test", "valid"], choices=["test", "valid"])
    ap.add_argument("--pages", type=positive_int, default=8, help="pages of each split scored by both (all are compared "
                    "for detokenized text and windows)")
    ap.add_argument("--out", default="nbs/data/wikitext_harness_check.json")
    args = ap.parse_args(argv)
    with user_errors(PROG, OSError, RuntimeError, ValueError):
        utils = lm_eval_module("utils.py")
        pw = lm_eval_module("tasks/wikitext/preprocess_wikitext.py")
        torch.manual_seed(0)
        model = GPT(GPTConfig(block_size=64, vocab_size=50257, n_layer=2, n_head=2, n_embd=32)).eval()
        tok = GPT2Tokenizer()
        out = dict(command=" ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
                   lm_eval=importlib.metadata.version("lm_eval"), machine=machine_info(),
                   model="random GPT (torch.manual_seed(0)), block_size 64, 2 layers, 2 heads, n_embd 32, GPT-2 vocabulary",
                   splits={s: check_split(s, utils, pw, tok, model, args.pages) for s in args.splits})
        atomic_write_text(Path(args.out), json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
