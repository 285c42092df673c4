"""Chapter 13's scaling study without training: the plan's decisions on made-up finished runs (sweeps that widen,
ties that call for seeds, the rule between budgets), the analysis end to end on runs from a known law (the fit, the
hold-out test, the multipliers, the annealing check naming a failure), the results files and the command."""
import json
import math
import sys

import numpy as np
import pytest

from gpt2book.common import run_main
from gpt2book import scaling, scaling_runs
from gpt2book.scaling import (analyse, annealing_check, arch_gaps, compute_multipliers, fit_with_intervals, holdout,
                              law_loss, noise_sd, optimal_exponent, read_rows, seed_stats, write_rows)


def test_the_fit_imports_no_torch():
    import subprocess
    code = "import sys, gpt2book.scaling; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---- the plan, on made-up finished runs ------------------------------------------------------------------------
def finish(root, arm, size, steps, lr, seed, loss):
    from gpt2book.scaling_runs import run_dir
    d = run_dir(root, arm, size, steps, lr, seed)
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.jsonl").write_text(json.dumps({"step": steps, "val_loss": loss}) + "\n")


@pytest.fixture(scope="module")
def table():
    from gpt2book.scaling_runs import size_table
    return size_table()


def test_a_sweep_widens_at_its_edge_and_breaks_ties_with_seeds(tmp_path, table):
    from gpt2book.scaling_runs import Plan
    plan = Plan(tmp_path, table)
    assert plan.best("gpt2", "L2C32", 800) is None
    assert sorted(j[3] for j in plan.todo) == [0.004, 0.008, 0.016]          # three rates around the first centre
    for lr, loss in ((0.004, 2.0), (0.008, 1.9), (0.016, 1.8)): finish(tmp_path, "gpt2", "L2C32", 800, lr, 1337, loss)
    plan.todo = []
    assert plan.best("gpt2", "L2C32", 800) is None and plan.todo == [("gpt2", "L2C32", 800, 0.032, 1337)]   # widened
    finish(tmp_path, "gpt2", "L2C32", 800, 0.032, 1337, 1.805)                   # within 0.01 of 0.016: a tie
    plan.todo = []
    assert plan.best("gpt2", "L2C32", 800) is None
    assert sorted(plan.todo) == sorted([("gpt2", "L2C32", 800, lr, s) for lr in (0.016, 0.032) for s in (1338, 1339)])
    for s, (a, b) in zip((1338, 1339), ((1.80, 1.83), (1.79, 1.84))):
        finish(tmp_path, "gpt2", "L2C32", 800, 0.016, s, a); finish(tmp_path, "gpt2", "L2C32", 800, 0.032, s, b)
    assert Plan(tmp_path, table).best("gpt2", "L2C32", 800) == 0.016           # the lower three-seed mean
    # the next size's sweep centres on that choice; a diverged run bounds the sweep from above
    plan = Plan(tmp_path, table)
    assert plan.best("gpt2", "L3C48", 800) is None and sorted(j[3] for j in plan.todo) == [0.008, 0.016, 0.032]


def test_collect_reads_the_run_folders(tmp_path, table):
    "collect parses each run folder's name (steps, rate, seed), gives it its role, its machine and wall time."
    from gpt2book.scaling_runs import collect, run_dir
    for lr, loss in ((0.004, 2.0), (0.008, 1.9), (0.016, 1.95)): finish(tmp_path, "gpt2", "L2C32", 800, lr, 1337, loss)
    d = run_dir(tmp_path, "gpt2", "L2C32", 800, 0.008, 1337)
    (d / "machine.json").write_text(json.dumps({"cpu": "AMD EPYC", "threads": 1}))       # the first study script's form
    (d / "wall.jsonl").write_text('{"wall_s": 10.0, "rc": 0}\n{"wall_s": 5.5, "rc": 0}\n')
    (tmp_path / "gpt2" / "L2C32" / "b800_lr0.032_s1337").mkdir()                           # started, not finished
    runs, curves = collect(tmp_path, train_tokens=4_566_552)
    got = {r["lr"]: r for r in runs}
    assert sorted(got) == [0.004, 0.008, 0.016] and {r["steps"] for r in runs} == {800} and {r["seed"] for r in runs} == {1337}
    assert (got[0.008]["machine"], got[0.008]["wall_s"], got[0.004]["wall_s"]) == ("AMD EPYC, 1 thread", 15.5, None)
    assert got[0.008]["n_params"] == table["L2C32"][0] and got[0.008]["epochs"] == round(800 * 1024 / 4_566_552, 4)
    assert {r["role"] for r in runs} == {"lr-sweep"}          # the 800-step sweep alone chooses no grid rate yet
    assert len(curves) == 3 and {c["step"] for c in curves} == {800}


def test_the_rule_between_the_swept_budgets(tmp_path, table):
    from gpt2book.scaling_runs import Plan
    plan = Plan(tmp_path, table)
    plan.best = lambda arm, size, steps: {800: 0.008, 3200: 0.004}[steps]
    assert [plan.rate("gpt2", "L2C32", b) for b in (400, 800, 1600, 3200)] == [0.0113, 0.008, 0.00566, 0.004]


# ---- the analysis, on runs from a known law --------------------------------------------------------------------
TRUE = dict(E=1.2, A=30.0, B=400.0, alpha=0.35, beta=0.40)


@pytest.fixture(scope="module")
def synth():
    rng = np.random.default_rng(1)
    sizes = {f"S{i}": n for i, n in enumerate((3e4, 8e4, 2e5, 4e5, 7e5, 1.1e6))}
    rows, curves = [], []
    for arm, scale in (("gpt2", 1.0), ("better", 1.5)):
        for size, N in sizes.items():
            for steps in (400, 800, 1600, 3200):
                for seed in ((1337, 1338, 1339) if size in ("S5", "S2") else (1337,)):
                    loss = float(law_loss(TRUE, N, steps * 1024 * scale)) + rng.normal() * 0.004
                    rows.append(dict(arm=arm, size=size, n_params=int(N), n_params_total=int(N * 1.1),
                                     flops_per_token=int(6 * N), steps=steps, tokens=steps * 1024, epochs=0.1,
                                     seed=seed, lr=1e-3, role="grid" if seed == 1337 else "noise", val_loss=loss,
                                     machine="synthetic", wall_s=1.0))
                    for b in (400, 800, 1600):   # a longer run read at b: higher than the annealed one (unannealed)
                        if b < steps:
                            curves.append(dict(arm=arm, size=size, steps=steps, seed=seed, lr=1e-3, step=b,
                                               tokens=b * 1024, val_loss=float(law_loss(TRUE, N, b * 1024 * scale)) + 0.05))
    for size in ("S0", "S1", "S2", "S3"):                 # an IsoFLOP level of GPT-2: 5e12 FLOPs on each size
        N = sizes[size]; steps = round(5e12 / (6 * N) / 1024)
        rows.append(dict(arm="gpt2", size=size, n_params=int(N), n_params_total=int(N * 1.1), flops_per_token=int(6 * N),
                         steps=steps, tokens=steps * 1024, epochs=0.1, seed=1337, lr=1e-3, role="isoflop",
                         val_loss=float(law_loss(TRUE, N, steps * 1024)), machine="synthetic", wall_s=1.0))
    return rows, curves


def test_the_fit_recovers_the_law_and_the_holdout_test_passes(synth):
    runs, _ = synth
    fit = fit_with_intervals(runs, "gpt2", exclude=("S5",), n_boot=30)
    assert abs(fit["law"]["alpha"] - TRUE["alpha"]) < 0.1 and abs(fit["law"]["beta"] - TRUE["beta"]) < 0.1
    assert fit["a_ci"][0] <= optimal_exponent(TRUE) <= fit["a_ci"][1]
    h = holdout(runs, "S5", n_boot=30)
    assert len(h["budgets"]) == 4 and all(b["seeds"] == 3 and abs(b["error"]) < 0.02 for b in h["budgets"])
    assert sum(b["covered"] for b in h["budgets"]) >= 3
    sd = noise_sd(runs)                              # the yardstick is the budget's pooled noise, not 3 seeds' own SD
    assert all(b["budget_sd"] == sd[b["steps"]] and b["error_sds"] == abs(b["error"]) / sd[b["steps"]] for b in h["budgets"])


def test_noise_per_budget_and_gaps_and_multipliers(synth):
    runs, _ = synth
    sd = noise_sd(runs)
    assert set(sd) == {400, 800, 1600, 3200} and all(0.0005 < v < 0.01 for v in sd.values())
    gaps = arch_gaps(runs)
    assert len(gaps) == 24 and all(g["delta"] < 0 for g in gaps)            # the better arm is better everywhere
    assert all(g["ci_low"] < g["delta"] < g["ci_high"] for g in gaps)
    assert {g["seeds"] for g in gaps} == {1, 3}
    mult = compute_multipliers(runs, "gpt2", "better", n_boot=40)
    ms = [c["m"] for c in mult["cells"].values() if c]
    assert len(ms) >= 12 and all(1.3 < m < 1.7 for m in ms)
    assert mult["cells"][("S0", 3200)] is None                                 # beyond GPT-2's longest budget
    assert mult["trend"][800]["ci"][0] < 0 < mult["trend"][800]["ci"][1]       # no trend with size, and it says so


def test_the_annealing_check_names_every_failure(synth):
    runs, curves = synth
    checks = annealing_check(runs, curves)
    assert len(checks) > 40 and all(c["ok"] for c in checks)
    bad = [dict(r, val_loss=r["val_loss"] + 0.2) if (r["arm"], r["size"], r["steps"], r["seed"]) == ("gpt2", "S1", 400, 1337)
           else r for r in runs]
    failed = [c for c in annealing_check(bad, curves) if not c["ok"]]
    assert {(c["size"], c["steps"]) for c in failed} == {("S1", 400)} and len(failed) == 3   # against 800, 1600, 3200


def test_analyse_files_and_the_command(synth, tmp_path, monkeypatch):
    runs, curves = synth
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbs" / "data").mkdir(parents=True); (tmp_path / "images").mkdir()
    write_rows(runs, scaling.FILES["runs"], scaling.RUN_FIELDS)
    write_rows(curves, scaling.FILES["curves"], scaling.CURVE_FIELDS)
    assert read_rows(scaling.FILES["runs"])[0]["val_loss"] == pytest.approx(runs[0]["val_loss"])
    out, err, status = run_main(scaling_runs.main, ["fit", "--boot", "20", "--results_root", tmp_path])
    assert status == 0, err
    fit = json.loads((tmp_path / scaling.FILES["fit"]).read_text())
    assert fit["held_out"] == fit["holdout"]["held_out"] == "S5"                 # the largest size
    assert {"n_params", "n_params_total"} == set(fit["fits"]) and fit["annealing"]["failures"] == []
    gaps = read_rows(scaling.FILES["gaps"])
    assert set(gaps[0]) == set(scaling.GAP_FIELDS) and (tmp_path / scaling.PLOTS["law"]).stat().st_size > 10_000
    assert "S5@800" in fit["multipliers"]["better"]["cells"] and fit["optimum"]["isoflop"]["points"]


def test_the_command_refuses_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)                                   # no out/scaling, no data/ here
    for args, want, says in [
            (["fit", "--results_root", tmp_path], 1, f"no results file {tmp_path / scaling.FILES['runs']}"),
            (["fit", "--boot", "0"], 2, "boot=0 must be at least 1"),
            (["fit", "--results_root", tmp_path / "no"], 2, f"--results_root={tmp_path / 'no'}: no such folder"),
            (["sweep", "--workers", "x"], 2, "argument --workers: invalid int value: 'x'"),
            (["collect"], 2, "collect: --out=out/scaling: no such folder; run `python -m gpt2book.scaling_runs sweep`"),
            (["collect", "--out", tmp_path], 2, "--data_dir=data/shakespeare_complete: no prepared data"),
            (["collect", "--out", tmp_path, "--data_dir", tmp_path, "--results_root", tmp_path / "no"], 2,
             "collect: --results_root=")]:
        _, err, status = run_main(scaling_runs.main, args)
        assert status == want and says in err and len(err.strip().splitlines()) == 1, (args, err)
    assert list(tmp_path.iterdir()) == []                         # the refusals wrote nothing
