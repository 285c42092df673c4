"""Tests of chapters 11 and 12 beyond their cells: order with and without positions, the rotary layer against a hand
computation, position interpolation, the router's gradient from the task loss alone, the router in float32 under
autocast, and the balancing loss's value and gradient."""
import math

import pytest
import torch

from gpt2book.model import GPT, POSITIONS, make_model, model_config
from gpt2book.moe import MoE, balance_loss, load_spread, moe_layers
from gpt2book.positions import RotaryEmbedding, rope_angles


def tiny(pos: str, n_layer: int = 1, **kw) -> GPT:
    torch.manual_seed(0)
    return make_model(model_config(block_size=16, vocab_size=40, n_layer=n_layer, n_head=2, n_embd=16, pos=pos, **kw)).eval()


@pytest.mark.parametrize("pos", ["learned", "rope", "none"])
@pytest.mark.parametrize("n_layer", [1, 2])
def test_a_permutation_of_earlier_tokens_reaches_the_last_output(pos, n_layer):
    "With positions (learned, rope) the last logits see a swap of earlier tokens; without, one layer cannot, two can."
    m = tiny(pos, n_layer)
    seq = torch.tensor([[3, 8, 1, 5, 7, 2]])
    with torch.no_grad():
        base = m(seq)[0][0, -1]
        moved = [(m(seq[:, list(p) + [5]])[0][0, -1] - base).abs().max().item()
                 for p in ([1, 0, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3])]
    if pos == "none" and n_layer == 1:
        assert max(moved) < 1e-6, moved
    else:
        assert min(moved) > 1e-5, moved


def test_nope_builds_neither_table_nor_rotation():
    m = tiny("none")
    assert list(m.transformer.wpe.parameters()) == [] and list(m.transformer.wpe.buffers()) == []
    assert set(POSITIONS) >= {"learned", "rope", "none"}
    assert m.num_params() == m.num_params(non_embedding=True) == tiny("rope").num_params()
    assert tiny("learned").num_params() - m.num_params() == 16 * 16


def test_the_rotary_layer_is_the_hand_computation():
    "CausalSelfAttention with RoPE against loops, 2 x 2 rotation matrices and a causal softmax."
    m = tiny("rope", bias=False)
    attn, hs, T = m.transformer.h[0].attn, 8, 7
    x = torch.randn(T, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = attn(x[None], m.transformer.wpe(x[None], 0)[1])[0]   # the rotation of positions 0..T-1
        q, k, v = (x @ attn.c_attn.weight.T).split(16, dim=-1)

        def rot(vec, pos):
            out = vec.clone()
            for i in range(hs // 2):
                a = pos * 10000.0 ** (-2 * i / hs)
                out[[i, i + hs // 2]] = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) @ vec[[i, i + hs // 2]]
            return out

        heads = torch.zeros(T, 16)
        for h in range(2):
            c = slice(h * hs, (h + 1) * hs)
            for t in range(T):
                w = torch.tensor([rot(q[t, c], t) @ rot(k[u, c], u) / math.sqrt(hs) for u in range(t + 1)]).softmax(0)
                heads[t, c] = sum(w[u] * v[u, c] for u in range(t + 1))
        torch.testing.assert_close(y, heads @ attn.c_proj.weight.T, rtol=0, atol=1e-5)


def test_position_interpolation_rotates_position_m_as_m_times_the_scale():
    full, half = RotaryEmbedding(8, 32), RotaryEmbedding(8, 64, scale=0.5)
    torch.testing.assert_close(half(0, 64)[0][::2], full(0, 32)[0], rtol=0, atol=1e-7)
    torch.testing.assert_close(rope_angles(8, 5, scale=0.25)[4], rope_angles(8, 2)[1], rtol=0, atol=0)


def router_grad(top_k: int, renormalize: bool | None = None) -> float:
    torch.manual_seed(0)
    m = make_model(model_config(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=16, ffn="moe", n_expert=4,
                                expert_top_k=top_k))
    if renormalize is not None:
        for layer in moe_layers(m): layer.renormalize = renormalize
    idx = torch.randint(0, 40, (4, 17), generator=torch.Generator().manual_seed(1))
    m(idx[:, :-1], idx[:, 1:])[1].backward()                   # the cross-entropy alone: no balancing loss
    return torch.cat([layer.router.weight.grad.flatten() for layer in moe_layers(m)]).norm().item()


def test_the_router_learns_from_the_cross_entropy_alone_with_one_or_two_experts():
    g1, g2 = router_grad(1), router_grad(2)
    assert g1 > 1e-4 and g2 > 1e-4, (g1, g2)
    assert router_grad(1, renormalize=True) < 1e-6 * g1     # renormalised over one expert, every gate is 1: no gradient
    assert router_grad(2, renormalize=False) > 1e-4         # OLMoE's raw top-2 probabilities learn too
    assert MoE(8, n_expert=4, top_k=1).renormalize is False and MoE(8, n_expert=4, top_k=2).renormalize is True


def test_top1_gate_is_the_router_probability():
    moe = MoE(8, n_expert=4, top_k=1)
    x = torch.randn(10, 8)
    probs, chosen, gates = moe.route(x)
    torch.testing.assert_close(gates, probs.gather(1, chosen))
    assert (gates < 1).all()


def test_the_whole_router_runs_in_float32_under_autocast():
    moe = MoE(16, n_expert=8, top_k=2)
    x = torch.randn(32, 16)
    want = (x @ moe.router.weight.T).softmax(-1)             # float32, by hand
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert moe.router(x).dtype == torch.bfloat16          # a plain Linear would run in bfloat16 here ...
        probs, _, gates = moe.route(x.bfloat16())             # ... the router does not (the input itself is bf16 here)
    assert probs.dtype == gates.dtype == torch.float32
    torch.testing.assert_close(probs, (x.bfloat16().float() @ moe.router.weight.T).softmax(-1), rtol=0, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(moe.route(x)[0], want, rtol=0, atol=1e-6)


def test_the_balancing_loss_value_is_not_a_measure_of_balance():
    E = 4
    uniform = torch.full((8, E), 1 / E)
    on_one = torch.zeros(8, 1, dtype=torch.long)
    assert balance_loss(uniform, on_one, E).item() == pytest.approx(1.0)        # every token on one expert: still 1
    P = torch.tensor([[1 / 3, 2 / 3]]).repeat(3, 1)
    assert balance_loss(P, torch.tensor([[0], [0], [1]]), 2).item() == pytest.approx(8 / 9)   # below 1
    assert load_spread([8, 0, 0, 0]) == pytest.approx({"min_share": 0.0, "max_share": 1.0, "cv": math.sqrt(3)})
    assert load_spread([3, 3, 3, 3])["cv"] == 0.0
