"""Tests of chapters 11 and 12 beyond their cells: order with and without positions, the rotary layer against a hand
computation, position interpolation, rotary pairs held still past a window (offsets or positions) against a hand
computation, the router's gradient from the task loss alone, the router in float32 under autocast, the balancing
loss's value and gradient, and the statistics of bench/extrapolate.py and bench/aux_loss.py (intervals over seeds,
Welch's interval and degrees of freedom) and their designs."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gpt2book.model import GPT, POSITIONS, make_model, model_config
from gpt2book.moe import MoE, balance_loss, load_spread, moe_layers
from gpt2book.positions import RotaryEmbedding, clamped_pairs, pair_channels, rope_angles, rope_wavelengths
from gpt2book.stats import ci95, t975

ROOT = Path(__file__).resolve().parents[1]


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


# ---------------------------------------------------------------- holding rotary pairs still (chapter 11's wavelength test)

def test_wavelengths_are_two_pi_over_each_pairs_turn():
    lam = rope_wavelengths(32)
    torch.testing.assert_close(lam, 2 * math.pi / rope_angles(32, 2)[1, :16], rtol=1e-12, atol=0)
    assert lam[4] < 64 < lam[5] and lam[0] == pytest.approx(2 * math.pi)     # the chapter's heads: pairs 5-15 exceed 64
    assert rope_wavelengths(8, theta=100.0).tolist() == pytest.approx([2 * math.pi * 100 ** (i / 4) for i in range(4)])


def held_layer_by_hand(attn, x, held, window: int, mode: str, hs: int):
    "One attention layer on x (T, C) with the pairs `held` at offset min(m - n, window) ('offset') or min(m, w) - min(n, w)."
    T, C = x.shape
    q, k, v = (x @ attn.c_attn.weight.T + attn.c_attn.bias).split(C, dim=-1)
    def offset(m, n, i):
        if i not in held: return m - n
        return min(m - n, window) if mode == "offset" else min(m, window) - min(n, window)
    heads = torch.zeros(T, C, dtype=torch.float64)
    for h in range(C // hs):
        c = slice(h * hs, (h + 1) * hs)
        for m in range(T):
            s = []
            for n in range(m + 1):
                total = 0.0
                for i in range(hs // 2):                                     # the query turned by the offset, the key at 0
                    a = offset(m, n, i) * 10000.0 ** (-2 * i / hs)
                    R = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
                    total += ((R @ q[m, c][[i, i + hs // 2]].double()) @ k[n, c][[i, i + hs // 2]].double()).item()
                s.append(total / math.sqrt(hs))
            w = torch.tensor(s, dtype=torch.float64).softmax(0)
            heads[m, c] = sum(w[n] * v[n, c].double() for n in range(m + 1))
    return (heads @ attn.c_proj.weight.T.double() + attn.c_proj.bias.double()).float()


@pytest.mark.parametrize("mode", ["offset", "position"])
@pytest.mark.parametrize("held", [[0], [2, 3], [0, 1, 2, 3], [1, 3]])
def test_held_pairs_are_the_hand_computation(mode, held):
    m = tiny("rope")
    attn, x = m.transformer.h[0].attn, torch.randn(9, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad(), clamped_pairs(m, held, 3, mode):
        y = attn(x[None], m.transformer.wpe(x[None], 0)[1])[0]           # (T, C)
    torch.testing.assert_close(y, held_layer_by_hand(attn, x, held, 3, mode, hs=8), rtol=0, atol=2e-5)


def test_holding_nothing_or_past_the_sequence_is_the_plain_model_and_the_model_comes_back():
    m = tiny("rope", n_layer=2)
    idx = torch.randint(0, 40, (3, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = m(idx)[0]
        for pairs, window, mode in (([], 2, "offset"), ([], 2, "position"), ([0, 1, 2, 3], 15, "offset"),
                                    ([0, 1, 2, 3], 15, "position"), ([1], 40, "offset")):
            with clamped_pairs(m, pairs, window, mode):
                torch.testing.assert_close(m(idx)[0], plain, rtol=0, atol=1e-5)
        for mode in ("offset", "position"):
            with clamped_pairs(m, [0, 1], 4, mode):
                held = m(idx)[0]
            torch.testing.assert_close(held[:, :5], plain[:, :5], rtol=0, atol=1e-5)   # no offset past 4 before position 5
            assert (held[:, 5:] - plain[:, 5:]).abs().max() > 1e-4
        with pytest.raises(RuntimeError), clamped_pairs(m, [0, 1], 4):
            raise RuntimeError("leaving by an error")
        assert torch.equal(m(idx)[0], plain) and "forward" not in vars(m.transformer.h[0].attn)   # restored both times


def test_all_pairs_with_positions_held_is_the_model_read_at_clamped_positions():
    "mode='position' on every pair: the rotation of position p is that of min(p, window), in every layer."
    m = tiny("rope", n_layer=2)
    idx = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(6))
    ref = tiny("rope", n_layer=2)
    ang = rope_angles(8, 16)[torch.arange(16).clamp(max=6)]                 # (16, hs): positions past 6 rotated as 6
    ref.transformer.wpe.rope.cos, ref.transformer.wpe.rope.sin = ang.cos().float(), ang.sin().float()
    with torch.no_grad(), clamped_pairs(m, range(4), 6, "position"):
        torch.testing.assert_close(m(idx)[0], ref(idx)[0], rtol=0, atol=1e-6)


def test_clamped_pairs_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="pos='learned'"), clamped_pairs(tiny("learned"), [0], 3): pass
    with pytest.raises(ValueError, match="mode='angle'"), clamped_pairs(tiny("rope"), [0], 3, "angle"): pass
    with pytest.raises(ValueError, match="pairs 0 to 3"): pair_channels(8, [0, 4])
    assert pair_channels(8, [1, 3]).tolist() == [False, True, False, True, False, True, False, True]
    m = tiny("rope")
    with clamped_pairs(m, [0], 3), pytest.raises(ValueError, match="no KV cache"):
        m.generate(torch.zeros(1, 2, dtype=torch.long), 3)


# ---------------------------------------------------------------- the statistics of bench/extrapolate.py and bench/aux_loss.py

def bench(name: str):
    "A bench/ script as a module (bench/ is not a package)."
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_seed_intervals_are_student_t_over_the_seeds():
    ex = bench("extrapolate")
    s = ex.over_seeds([1.0, 2.0, 3.0])                                       # mean 2, SD 1, t(0.975, 2) = 4.3027
    assert s["mean"] == 2.0 and s["sd"] == 1.0 and s["df"] == 2 and s["per_seed"] == [1.0, 2.0, 3.0]
    assert s["high"] - 2.0 == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-7) and s["low"] == pytest.approx(4 - s["high"])
    one = ex.over_seeds([1.5])
    assert one["low"] is one["high"] is one["sd"] is None and one["df"] == 0 and one["mean"] == 1.5   # no NaN in a JSON file
    rng = np.random.default_rng(0)
    per_window = [rng.normal(2.0 + 0.1 * s, 0.5, size=(40, 32)) for s in range(3)]   # 3 seeds' (windows, positions)
    reads = [{"pos": "rope", "block_size": 16, "length": 32, **ex.summarise(w, 8)} for w in per_window]
    assert reads[0]["bins"][1]["mean"] == pytest.approx(per_window[0][:, 8:16].mean())
    c = ex.combine(reads)
    assert c["seeds"] == 3 and len(c["bins"]) == 4 and c["length"] == 32
    for i, b in enumerate(c["bins"]):
        means = [w[:, 8 * i:8 * i + 8].mean() for w in per_window]
        assert b["per_seed"] == pytest.approx(means) and (b["mean"], b["low"], b["high"]) == pytest.approx(ci95(means))
    assert c["loss"] == pytest.approx(np.mean([w.mean(0) for w in per_window], axis=0))
    assert c["position_1"] == pytest.approx(list(ci95([w[:, 1].mean() for w in per_window])))


def test_the_wavelength_design_holds_slow_pairs_against_fast_ones():
    ex = bench("extrapolate")
    reads, groups = ex.wavelength_design(32, 10000.0, 64, "all")
    slowest = [reads[k] for k in groups["slowest first"]]
    assert [len(p) for _, p in slowest] == list(range(1, 17)) and slowest[10] == ("offset", list(range(5, 16)))
    fastest = [reads[k] for k in groups["fastest first"]]
    assert fastest[4] == ("offset", [0, 1, 2, 3, 4]) and fastest[-1] == ("offset", list(range(16)))
    assert [reads[k][1] for k in groups["one pair"]] == [[i] for i in range(16)]
    assert [reads[k] for k in groups["positions held"]] == [("position", list(range(5, 16))), ("position", [0, 1, 2, 3, 4])]
    assert len(reads) == 16 + 15 + 14 + 2                                    # each reading once, though in several groups
    head, hgroups = ex.wavelength_design(32, 10000.0, 64, "headline")
    assert [len(head[k][1]) for k in hgroups["slowest first"]] == [5, 11, 16] and "one pair" not in hgroups
    assert ex.pairs_name([5, 6, 7]) == "pairs 5-7" and ex.pairs_name([3]) == "pair 3" and ex.pairs_name([0, 2]) == "pairs 0, 2"


def test_welch_interval_and_degrees_of_freedom():
    aux = bench("aux_loss")
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0]                       # variances 5/2 and 4: SE^2 1/2 and 4/3
    assert aux.welch_df(x, y) == pytest.approx(484 / 137, rel=1e-12)         # (11/6)^2 / (1/16 + 8/9)
    w = aux.welch(x, y)
    assert w["mean"] == -1.0 and w["se"] == pytest.approx(math.sqrt(11 / 6)) and w["df"] == pytest.approx(484 / 137)
    assert w["high"] - w["mean"] == pytest.approx(t975(484 / 137) * math.sqrt(11 / 6), rel=1e-12)
    assert aux.welch([1.0, 1.0], [2.0, 2.0])["df"] is None                   # no spread at all
    rows = [{"arm": arm, "val_loss": v} for arm, vs in (("with", y), ("without", x)) for v in vs]
    s = aux.summarise(rows)
    assert s["with"]["n"] == 3 and s["without"]["sd"] == pytest.approx(math.sqrt(2.5)) and s["difference"]["mean"] == -1.0   # without - with


def test_the_aux_loss_runs_are_the_experiments_moe_active_run(tmp_path):
    aux = bench("aux_loss")
    from gpt2book.experiments import ARCHITECTURES, Scale, run_job
    assert aux.best_lr(ROOT / "nbs" / "data" / "architectures.csv") == 0.002
    jobs = aux.jobs_of(tmp_path, 0.002, [1337, 1338], {})
    assert list(jobs) == [("with", 1337), ("without", 1337), ("with", 1338), ("without", 1338)]
    run_dir, settings = run_job(Scale(), ARCHITECTURES, ("moe-active", 0.002, 1338), tmp_path)
    assert jobs["with", 1338] == (run_dir, {**settings, "aux_loss_weight": 0.01})
    assert jobs["without", 1338] == (tmp_path / "moe-active-noaux_lr0.002_s1338", {**settings, "aux_loss_weight": 0.0})


def test_one_seed_keeps_the_interval_over_windows():
    ex = bench("extrapolate")
    w = np.random.default_rng(1).normal(2.0, 0.5, size=(40, 16))
    read = {"pos": "rope", "block_size": 16, "length": 16, **ex.summarise(w, 8)}
    c = ex.combine([read])
    assert c["seeds"] == 1 and c["interval"] == "over windows" and c["bins"] == read["bins"]
    assert (c["bins"][0]["low"], c["bins"][0]["high"]) == pytest.approx(ci95(w[:, :8].mean(1))[1:])
