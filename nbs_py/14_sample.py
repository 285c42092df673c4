# %% [markdown]
# # Using the model: generation and fine-tuning
#
# > Loading a trained model from a run folder, a Hugging Face folder or the hub; generating text fast with a KV cache and the sampling controls; `python -m gpt2book.sample`; and fine-tuning from pretrained weights.

# %%
#| default_exp sample

# %%
#| export
import json
from pathlib import Path

import torch

from gpt2book.files import checkpoints, newest_readable_checkpoint
from gpt2book.model import GPT, GPTConfig
from gpt2book.tokenizer import GPT2Tokenizer, tokenizer_from_dict

# %%
import tempfile

from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## Loading a model
#
# A model can come from three places, and `load_model` takes any of them:
#
# - **a run folder** of the trainer (chapter 9): the newest checkpoint that can be read holds the
#   model's config, its weights and its tokenizer (a run saved before checkpoints carried the
#   tokenizer falls back to the `meta.json` of the data folder its `config.json` names);
# - **a Hugging Face folder** (`config.json` + `model.safetensors`, as `save_pretrained` writes
#   it), with GPT-2's tokenizer;
# - **a hub name** such as `gpt2`, downloaded by `huggingface_hub` where there is a network.
#
# It returns the model in eval mode on `device`, and the tokenizer.

# %%
#| export
class ModelError(Exception):
    "A model that cannot be loaded, with a message that says what to pass instead."

def _tokenizer_of_run(run_dir: Path, ckpt: dict):
    if "tokenizer" in ckpt:
        return tokenizer_from_dict(ckpt["tokenizer"])
    cfg = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
    meta = Path(cfg.get("data_dir") or f"data/{cfg.get('dataset', '')}") / "meta.json"
    if not meta.exists():
        raise ModelError(f"{run_dir}'s checkpoint does not name its tokenizer, and its data folder ({meta.parent}) is "
                         f"gone: prepare that data again (python data/prepare.py ...) or retrain")
    return tokenizer_from_dict(json.loads(meta.read_text())["tokenizer"])

def _looks_local(spec) -> bool:
    "A path, not a hub name: starts with . / ~, or its first part is a folder here (out/cpu; not openai-community/gpt2)."
    s = str(spec)
    return s.startswith((".", "/", "~")) or ("/" in s and Path(s.split("/")[0]).is_dir())

def load_model(spec, device: str = "cpu"):
    "(GPT in eval mode on `device`, tokenizer) from a run folder, a Hugging Face folder or a hub name."
    path = Path(spec)
    if path.is_dir() and checkpoints(path):
        _, ckpt = newest_readable_checkpoint(path)
        if ckpt is None:
            raise ModelError(f"{path} holds no readable checkpoint (every ckpt_*.pt was damaged)")
        model = GPT(GPTConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        return model.to(device).eval(), _tokenizer_of_run(path, ckpt)
    if path.is_dir() and not (path / "config.json").exists():
        raise ModelError(f"{path} is neither a run folder (no ckpt_*.pt) nor a Hugging Face folder (no config.json): "
                         f"pass a folder that `python -m gpt2book.train` or `save_pretrained` wrote, or a hub name (gpt2)")
    if not path.exists() and _looks_local(spec):
        raise ModelError(f"{spec}: no such folder (a run folder, a Hugging Face folder, or a hub name such as gpt2)")
    try:
        model = GPT.from_pretrained(spec)
    except (OSError, ValueError) as e:
        raise ModelError(str(e)) from None
    return model.to(device).eval(), GPT2Tokenizer()


# %%
tmp = Path(tempfile.mkdtemp())
torch.manual_seed(0)
GPT(GPTConfig(block_size=32, vocab_size=50257, n_layer=1, n_head=2, n_embd=16)).save_pretrained(tmp / "hf")
m, tok = load_model(tmp / "hf")
test_eq((m.config.n_layer, tok.name, m.training), (1, "gpt2", False))
test_fail(lambda: load_model(tmp / "nothing-here"), contains="no such folder")
(tmp / "empty").mkdir()
test_fail(lambda: load_model(tmp / "empty"), contains="neither a run folder")
