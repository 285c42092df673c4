"The model's plug points: one logits path for every variant, the registries, and the Hugging Face export's refusals."
import dataclasses

import pytest
import torch
import torch.nn.functional as F

import gpt2book.moe  # noqa: F401  (the chapters register their variants when imported)
import gpt2book.positions  # noqa: F401
import gpt2book.recipe  # noqa: F401
from gpt2book.common import SettingError
from gpt2book.eval import token_logprobs
from gpt2book.model import GPT, KVCache, check_gpt2_architecture, make_model, model_config, next_token_probs

TINY = dict(block_size=16, vocab_size=65, n_layer=4, n_head=2, n_embd=32, bias=False, gelu="exact")
VARIANTS = {   # every variant the trainer accepts (bench/bitwise_model.py's list)
    "gpt2": {}, "rmsnorm+swiglu": dict(norm="rmsnorm", ffn="swiglu"), "relu2": dict(ffn="relu2"),
    "rope": dict(pos="rope"), "nope": dict(pos="none"), "moe": dict(ffn="moe", n_expert=4, expert_top_k=2, expert_hidden=16),
    "qk-norm": dict(qk_norm=True), "untied+zero-init": dict(tie_embeddings=False, zero_init=True),
    "softcap": dict(logit_softcap=2.0), "unet": dict(unet_skips=True), "speedrun-recipe": dict(pos="rope", qk_norm=True, n_layer=3),
}


def model(settings):
    torch.manual_seed(0)
    m = make_model(model_config(**{**TINY, **settings})).eval()
    with torch.no_grad():   # weights large enough that a softcap of 2 bends the logits
        m.lm_head.weight.normal_(0, 1.0)
    return m


@pytest.mark.parametrize("name", VARIANTS)
def test_one_logits_path(name):
    "generate's next-token distribution (cached and uncached) and eval's log-probabilities are softmax(forward's logits)."
    m, idx = model(VARIANTS[name]), torch.randint(0, 65, (3, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = m(idx)[0]                                                   # (B, T, V)
        want = F.softmax(logits[:, -1].float(), -1)
        uncached = next_token_probs(m.logits(m.hidden(idx)[:, -1]), temperature=1.0)
        cache = KVCache(16)
        m.hidden(idx[:, :7], cache)
        cached = next_token_probs(m.logits(m.hidden(idx[:, 7:], cache)[:, -1]), temperature=1.0)
        lp = F.log_softmax(logits[:, :-1].float(), -1).gather(-1, idx[:, 1:, None])[..., 0]   # eval-style, (B, T-1)
        _, loss = m(idx[:, :-1], idx[:, 1:])
    torch.testing.assert_close(uncached, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(cached, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(-lp.mean(), loss, rtol=0, atol=1e-5)
    scored = token_logprobs(m, [(row.tolist(), 1) for row in idx])           # chapter 15's scoring: tokens 1..T-1
    torch.testing.assert_close(torch.stack(scored), lp, rtol=0, atol=1e-5)
    if name == "softcap":
        assert logits.abs().max() <= 2.0 and m.logits(m.hidden(idx)).abs().max() <= 2.0
    # the sampler draws from exactly these probabilities: same generator, same token as a draw from `want`
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    drawn = m.generate(idx, 1, temperature=1.0, generator=g1, use_cache=False)[:, -1:]
    torch.testing.assert_close(drawn, torch.multinomial(uncached, 1, generator=g2))


@pytest.mark.parametrize("name", VARIANTS)
def test_config_round_trip(name):
    "A composed config goes through asdict (config.json) and back to an equal config; the model class fits it."
    c = model_config(**{**TINY, **VARIANTS[name]})
    assert model_config(**dataclasses.asdict(c)) == c
    m = make_model(c)
    assert isinstance(m, GPT) and (type(m) is GPT) == (name in ("gpt2", "rmsnorm+swiglu", "relu2", "rope", "nope", "moe"))


def one_line_error(fn, *contains):
    with pytest.raises(SettingError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and all(c in msg for c in contains), msg


def test_registries_refuse_unknown_kinds():
    one_line_error(lambda: model_config(pos="alibi"), "pos='alibi' is unknown", "learned", "rope", "none")
    one_line_error(lambda: model_config(ffn="kan"), "ffn='kan' is unknown", "mlp", "moe")
    one_line_error(lambda: model_config(norm="batchnorm"), "norm='batchnorm' is unknown", "rmsnorm")
    one_line_error(lambda: model_config(rope_thetta=1e4), "unknown model setting(s) rope_thetta", "rope_theta")
    one_line_error(lambda: model_config(ffn="moe", n_expert=2, expert_top_k=3), "at most n_expert")
    one_line_error(lambda: model_config(pos="rope", n_embd=6, n_head=2), "must be even")


def test_registered_kind_is_a_valid_setting():
    "A later chapter's entry in a registry makes its name a valid value at once (the choices are the live dict)."
    from gpt2book.block import BLOCK_FFNS
    BLOCK_FFNS["twice-mlp"] = BLOCK_FFNS["mlp"]
    try:
        assert model_config(ffn="twice-mlp").ffn == "twice-mlp"
    finally:
        del BLOCK_FFNS["twice-mlp"]
    one_line_error(lambda: model_config(ffn="twice-mlp"), "is unknown")


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "gpt2"] + ["bias", "moe-settings-only"])
def test_hf_export_refuses_non_gpt2(name, tmp_path):
    settings = {"bias": dict(bias=False), "moe-settings-only": dict(n_expert=4)}.get(name, VARIANTS.get(name))
    c = model_config(**{**TINY, "bias": True, **settings})
    with pytest.raises(ValueError, match="Hugging Face's GPT-2 cannot express"):
        check_gpt2_architecture(c)
    with pytest.raises(ValueError, match="cannot express"):
        make_model(c).save_pretrained(tmp_path / name)
    assert not (tmp_path / name).exists()


def test_hf_export_accepts_gpt2():
    check_gpt2_architecture(model_config(**{**TINY, "bias": True}))


def test_protocols():
    "aux_loss and the active count come from the modules (MoE), not from settings the model names."
    dense, moe = model(VARIANTS["gpt2"]), model(VARIANTS["moe"])
    idx = torch.zeros(1, 4, dtype=torch.long)
    dense(idx); moe(idx)
    assert dense.aux_loss() is None and moe.aux_loss() is not None
    assert dense.num_params(active=True) == dense.num_params()
    per_expert = sum(p.numel() for p in moe.transformer.h[0].mlp.experts[0].parameters())
    assert moe.num_params() - moe.num_params(active=True) == 4 * 2 * per_expert       # 4 layers x 2 idle experts
    untied = model(VARIANTS["untied+zero-init"])
    assert untied.num_params() - untied.num_params(non_embedding=True) == 65 * 32 + 16 * 32
