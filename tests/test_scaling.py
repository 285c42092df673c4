"""Chapter 13's scaling study without training: the plan's decisions on made-up finished runs (sweeps on two seeds
that widen at an edge, a parabola's optimum, the rule beyond the swept budgets, committed rows never trained again),
collecting run folders beside committed rows, and the analysis end to end on runs from a known law (the annealing
check dropping a failed run by name, the hold-out test, the IsoFLOP walls, the gaps), the results files and the
command."""
import json
import math
import sys

import numpy as np
import pytest

from gpt2book.common import run_main
from gpt2book import scaling, scaling_runs
from gpt2book.scaling import analyse, annealing_check, arch_gaps, failed_runs, law_loss, read_rows, write_rows
from gpt2book.scaling_runs import (BUDGETS, FITTED, HELD_OUT, SWEEP_BUDGETS, SWEEP_SEEDS, Plan, collect, known_runs,
                                   run_dir, size_table)


def test_the_fit_imports_no_torch():
    import subprocess
    code = "import sys, gpt2book.scaling; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---- the plan, on made-up finished runs ------------------------------------------------------------------------
def finish(root, arm, size, steps, lr, seed, loss, evals=()):
    d = run_dir(root, arm, size, steps, lr, seed)
    d.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": s, "val_loss": v}) for s, v in [*evals, (steps, loss)]]
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def table():
    return size_table()


def test_a_sweep_runs_two_seeds_widens_at_its_edge_and_takes_the_parabola(tmp_path, table):
    plan = Plan(tmp_path, table)
    b1, b2 = SWEEP_BUDGETS[:2]
    assert plan.sweep("gpt2", "L2C8", b1) is None
    assert sorted(plan.todo) == sorted(("gpt2", "L2C8", b1, lr, s) for lr in (0.0113, 0.016, 0.0226) for s in SWEEP_SEEDS)
    for lr, loss in ((0.0113, 2.0), (0.016, 1.9), (0.0226, 1.8)):
        for s, d in zip(SWEEP_SEEDS, (-0.01, 0.01)): finish(tmp_path, "gpt2", "L2C8", b1, lr, s, loss + d)
    plan = Plan(tmp_path, table)
    assert plan.sweep("gpt2", "L2C8", b1) is None and {j[3] for j in plan.todo} == {0.032}        # widened upwards
    for s in SWEEP_SEEDS: finish(tmp_path, "gpt2", "L2C8", b1, 0.032, s, 1.85)
    best, opt = Plan(tmp_path, table).sweep("gpt2", "L2C8", b1)
    assert best == 0.0226 and 0.016 < opt < 0.032 and opt != best                                   # a vertex between rungs
    plan = Plan(tmp_path, table)                  # the next size by parameters centres on that best: L2C12, not L3C12
    assert plan.sweep("gpt2", "L2C12", b1) is None and {j[3] for j in plan.todo} == {0.016, 0.0226, 0.032}
    assert {j[1] for j in plan.todo} == {"L2C12"}
    for s in SWEEP_SEEDS:                                       # a rate that diverged: a result, and no parabola through it
        for lr, loss in ((0.0113, 2.0), (0.016, 1.9)): finish(tmp_path, "gpt2", "L2C8", b2, lr, s, loss)
        run_dir(tmp_path, "gpt2", "L2C8", b2, 0.0226, s).mkdir(parents=True)
        (run_dir(tmp_path, "gpt2", "L2C8", b2, 0.0226, s) / "failed.json").write_text("{}")
    assert Plan(tmp_path, table).sweep("gpt2", "L2C8", b2) == (0.016, 0.016)


def test_the_rule_and_the_runs_in_the_committed_file_are_not_trained_again(tmp_path, table):
    plan = Plan(tmp_path, table)
    plan.sweep = lambda arm, size, steps: dict(zip(SWEEP_BUDGETS, ((0.0226, 0.0226), (0.016, 0.016), (0.0113, 0.0113))))[steps]
    assert SWEEP_BUDGETS == (1000, 2000, 4000)
    assert [plan.rate("gpt2", "L2C8", b) for b in BUDGETS] == pytest.approx([0.032, 0.0226, 0.016, 0.0113, 0.008], rel=2e-3)
    known = {("gpt2", "L2C8", 1000, lr, s): 2.0 - lr for lr in (0.0113, 0.016, 0.0226) for s in SWEEP_SEEDS}
    plan = Plan(tmp_path, table, known)
    plan.sweep("gpt2", "L2C8", 1000)
    assert plan.todo == [("gpt2", "L2C8", 1000, 0.032, s) for s in SWEEP_SEEDS]      # only the widened rung is new


def test_collect_reads_run_folders_and_keeps_the_committed_rows(tmp_path, table):
    for lr, loss in ((0.0113, 2.0), (0.016, 1.9)): finish(tmp_path, "gpt2", "L2C8", 1000, lr, 1337, loss, [(500, 2.3)])
    d = run_dir(tmp_path, "gpt2", "L2C8", 1000, 0.016, 1337)
    (d / "wall.jsonl").write_text('{"wall_s": 10.0, "rc": 0}\n{"wall_s": 5.5, "rc": 0}\n')
    (tmp_path / "gpt2" / "L2C8" / "b1000_lr0.0226_s1337").mkdir()                             # started, not finished
    old = dict(arm="gpt2", size="L3C12", n_params=1, n_params_total=1, flops_per_token=1, steps=500, tokens=256000,
               epochs=0.06, seed=1338, lr=0.016, role="x", val_loss=2.5, machine="elsewhere", wall_s=3.0)
    stale = dict(old, size="L2C8", steps=1000, lr=0.016, seed=1337, val_loss=9.0)            # a folder here wins over it
    runs, curves = collect(tmp_path, train_tokens=4_566_552, before=([old, stale], []))
    got = {(r["size"], r["lr"]): r for r in runs}
    assert set(got) == {("L2C8", 0.0113), ("L2C8", 0.016), ("L3C12", 0.016)} and got[("L2C8", 0.016)]["val_loss"] == 1.9
    assert got[("L2C8", 0.016)]["wall_s"] == 15.5 and got[("L3C12", 0.016)]["machine"] == "elsewhere"
    assert got[("L2C8", 0.016)]["n_params"] == table["L2C8"][0] and got[("L2C8", 0.016)]["epochs"] == round(512000 / 4_566_552, 4)
    assert {r["role"] for r in runs} == {"lr-sweep"}              # no sweep is complete: no rate chosen yet
    assert sorted((c["lr"], c["step"]) for c in curves) == [(0.0113, 500), (0.0113, 1000), (0.016, 500), (0.016, 1000)]
    assert known_runs(runs)[("gpt2", "L3C12", 500, 0.016, 1338)] == 2.5


# ---- the analysis, on runs from a known law --------------------------------------------------------------------
TRUE = dict(E=1.3, A=25.0, B=300.0, alpha=0.45, beta=0.40)
NS = dict(zip((*FITTED, HELD_OUT), (1.5e3, 4e3, 1e4, 2e4, 4e4, 7e4)))


@pytest.fixture(scope="module")
def synth():
    rng = np.random.default_rng(1)
    rows, curves = [], []
    def row(arm, size, steps, seed, role, scale=1.0):
        return dict(arm=arm, size=size, n_params=int(NS[size]), n_params_total=int(NS[size]) + 500,
                    flops_per_token=int(6 * NS[size]), steps=steps, tokens=steps * 512, epochs=0.1, seed=seed, lr=0.01,
                    role=role, val_loss=float(law_loss(TRUE, NS[size], steps * 512 * scale)) + rng.normal(0, 0.003),
                    machine="synthetic", wall_s=1.0)
    for arm, scale in (("gpt2", 1.0), ("better", 1.5)):
        for size in NS if arm == "gpt2" else FITTED:
            for steps in BUDGETS:
                for seed in range(5 if size == HELD_OUT else 3):
                    rows.append(row(arm, size, steps, seed, "holdout" if size == HELD_OUT else "grid", scale))
                    curves += [dict(arm=arm, size=size, steps=steps, seed=seed, lr=0.01, step=b, tokens=b * 512,
                                    val_loss=float(law_loss(TRUE, NS[size], b * 512 * scale)) + 0.05)
                               for b in BUDGETS if b < steps]                  # a longer run read at b: above the annealed one
    for C in (1e11, 3e11, 1e12):
        for size in NS:
            if 200 <= (steps := round(C / (6 * NS[size] * 512))) <= 250_000:
                rows += [row("gpt2", size, steps, seed, "isoflop") for seed in range(3)]
    return rows, curves


def test_the_annealing_check_names_every_failure_and_the_fit_drops_it(synth):
    runs, curves = synth
    checks = annealing_check(runs, curves)
    assert len(checks) > 100 and all(c["ok"] for c in checks)
    bad = [dict(r, val_loss=r["val_loss"] + 0.2) if (r["arm"], r["size"], r["steps"], r["seed"]) == ("gpt2", "L3C12", 500, 1)
           else r for r in runs]
    failed = [c for c in annealing_check(bad, curves) if not c["ok"]]
    assert {(c["size"], c["steps"], c["seed"]) for c in failed} == {("L3C12", 500, 1)} and len(failed) == 4   # vs 4 longer
    assert failed_runs(failed) == {("gpt2", "L3C12", 500, 1)}


def test_analyse_chooses_a_form_passes_the_holdout_and_brackets_the_levels(synth):
    runs, curves = synth
    fit = analyse(runs, curves, HELD_OUT, FITTED, n_boot=30)
    assert fit["forms"]["chinchilla"]["wls"]["chi2_dof"] < 2 and fit["holdout"]["held_out"] == HELD_OUT
    assert sum(b["passed"] for b in fit["holdout"]["budgets"]) >= 4 and len(fit["holdout"]["budgets"]) == 5
    assert {"E", "A", "B", "alpha", "beta", "form"} <= set(fit["holdout"]["law"])
    assert fit["with_embedding"]["law"]["form"] == fit["holdout"]["law"]["form"] and fit["with_embedding"]["dof"] > 0
    levels = fit["optimum"]["approach2"]["levels"]
    assert len(levels) == 3 and all(m["bracketed"] for m in levels.values())
    a_true = scaling.law_exponent(TRUE, np.geomspace(1e11, 1e12, 5), (6.0, 1.0))
    assert abs(fit["optimum"]["approach3"]["a"] - a_true) < 0.05 and abs(fit["optimum"]["approach2"]["a"] - a_true) < 0.06
    assert not any(p["inverted"] for p in fit["inversions"])
    assert fit["noise"]["gpt2"][500]["df"] == 5 * 2 + 4 and set(fit["noise"]["gpt2"][500]["cells"]) == set(NS)


def test_a_held_out_cell_left_with_one_seed_is_not_testable_and_the_test_does_not_pass(synth):
    runs, _ = synth
    drop = {("gpt2", HELD_OUT, 1000, seed) for seed in range(1, 5)}                 # four of five seeds fail the check
    test = scaling.holdout_test(runs, HELD_OUT, FITTED, "chinchilla", drop=drop, n_boot=20)
    by = {b["steps"]: b for b in test["budgets"]}
    assert by[1000]["seeds"] == 1 and by[1000]["passed"] is None and math.isnan(by[1000]["ratio"])
    assert all(by[b]["passed"] is not None for b in by if b != 1000) and test["passed"] is False


def test_gaps_are_welch_and_holm(synth):
    runs, _ = synth
    gaps = arch_gaps(runs)
    assert len(gaps) == 25 and all(g["delta"] < 0 and g["seeds"] == 3 for g in gaps)     # better everywhere
    assert all(g["holm_low"] <= g["ci_low"] < g["delta"] < g["ci_high"] <= g["holm_high"] for g in gaps)
    assert all(2 <= g["df"] <= 4 for g in gaps) and all(g["p"] <= g["p_holm"] for g in gaps)


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
    assert fit["held_out"] == fit["holdout"]["held_out"] == HELD_OUT and fit["annealing"]["failures"] == []
    gaps = read_rows(scaling.FILES["gaps"])
    assert set(gaps[0]) == set(scaling.GAP_FIELDS)
    assert all((tmp_path / p).stat().st_size > 10_000 for p in scaling.PLOTS.values())


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


def test_a_transient_budget_leaves_the_law_and_its_test(synth):
    runs, curves = synth
    rng = np.random.default_rng(2)                        # 500 steps: seeds 0.1 nats apart, as on the plateau
    noisy = [dict(r, val_loss=r["val_loss"] + rng.normal(0, 0.1)) if r["steps"] == 500 and r["role"] != "isoflop" else r
             for r in runs]
    fit = analyse(noisy, curves, HELD_OUT, FITTED, n_boot=10)
    assert fit["transient"] == [500] and fit["law_budgets"] == [1000, 2000, 4000, 8000]
    assert [b["steps"] for b in fit["holdout"]["budgets"]] == [1000, 2000, 4000, 8000]


def test_the_committed_results_recompute_from_the_csvs():
    "The fit file (hold-out table, IsoFLOP minima, everything else) and the gaps file are what the committed CSVs give."
    from gpt2book.common import book_path
    from gpt2book.scaling import FILES, GAP_FIELDS, _jsonable
    root = book_path()
    runs, curves = read_rows(root / FILES["runs"]), read_rows(root / FILES["curves"])
    fit = json.loads(json.dumps(_jsonable(analyse(runs, curves, HELD_OUT, FITTED))))      # as `fit` writes it (n_boot 200)
    committed = json.loads((root / FILES["fit"]).read_text())
    assert _close(fit, committed)
    drop = {(e["arm"], e["size"], e["steps"], e["seed"]) for e in committed["annealing"]["excluded"]}
    gaps = read_rows(root / FILES["gaps"])
    again = arch_gaps(runs, drop=drop)
    assert len(gaps) == len(again) and all(_close({k: g[k] for k in GAP_FIELDS}, {k: a[k] for k in GAP_FIELDS})
                                           for g, a in zip(gaps, again))


def _close(a, b) -> bool:
    "JSON-like values equal, floats to 1e-9 relative."
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list): return isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float): return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b


def test_status_counts_finished_runs_and_what_can_start(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbs" / "data").mkdir(parents=True)
    out, err, status = run_main(scaling_runs.main, ["status", "--out", tmp_path / "runs", "--results_root", tmp_path])
    assert status == 0, err
    assert "finished: 0 runs" in out and "the plan can start now: 54 runs" in out     # 3 rates x 2 seeds x 3 budgets x 3 arms
    finish(tmp_path / "runs", "gpt2", "L2C8", 1000, 0.016, 1337, 2.0)
    out, _, _ = run_main(scaling_runs.main, ["status", "--out", tmp_path / "runs", "--results_root", tmp_path])
    assert "finished: 1 runs (gpt2 1, rope 0, swiglu-rmsnorm 0)" in out and "can start now: 53 runs" in out


def test_recheck_writes_its_own_file_and_measures_the_machine(tmp_path, monkeypatch, capsys, table):
    "`recheck` on runs already finished here: their rows go to the machine file (never the study's), with their effect."
    from gpt2book.scaling import RUN_FIELDS
    from gpt2book.scaling_runs import GRID_SEEDS, LADDER, MACHINE_FILE, RECHECK_STEPS
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir(); (tmp_path / "data" / "meta.json").write_text('{"splits": {"train": {"tokens": 4566552}}}')
    base = dict(arm="gpt2", n_params=1, n_params_total=1, flops_per_token=1, steps=RECHECK_STEPS, tokens=RECHECK_STEPS * 512,
                epochs=0.4, machine="first", wall_s=1.0)
    rows = [dict(base, size=s, lr=lr, seed=seed, role="lr-sweep", val_loss=2 + math.log(lr / 0.016) ** 2)
            for s in table for lr in LADDER for seed in SWEEP_SEEDS]                     # every sweep's best: 0.016
    rows += [dict(base, size=s, lr=0.016, seed=seed, role="grid", val_loss=2.0 + 0.01 * (seed % 3)) for s in FITTED for seed in GRID_SEEDS]
    (tmp_path / "nbs" / "data").mkdir(parents=True)
    write_rows(rows, tmp_path / "nbs/data/scaling.csv", RUN_FIELDS)
    for s in FITTED:
        for seed in GRID_SEEDS: finish(tmp_path / "mc", "gpt2", s, RECHECK_STEPS, 0.016, seed, 2.1 + 0.01 * (seed % 3))
    args = ["recheck", "--out", tmp_path / "mc", "--data_dir", tmp_path / "data", "--results_root", tmp_path]
    out, err, status = run_main(scaling_runs.main, args)
    assert status == 0, err
    got = read_rows(tmp_path / MACHINE_FILE)
    assert len(got) == len(FITTED) * len(GRID_SEEDS) and {r["role"] for r in got} == {"machine-check"}
    assert len(read_rows(tmp_path / "nbs/data/scaling.csv")) == len(rows)                   # the study's file untouched
    assert "averaged over the sizes: +0.1000" in out and out.count(" at 4000 steps: +0.1000") == len(FITTED)
    run_main(scaling_runs.main, args)                                                          # again: the same rows, not twice
    assert len(read_rows(tmp_path / MACHINE_FILE)) == len(got)


def test_the_confirmation_comes_last_on_fresh_seeds_and_has_its_own_role(tmp_path, table):
    from gpt2book.scaling_runs import CONFIRM, SEEDS, _role
    plan = Plan(tmp_path, table)
    plan.sweep = lambda arm, size, steps: (0.01, 0.01)                    # every sweep done: every rate known
    jobs = plan.runs()
    confirm = [j for j in jobs if j[4] in CONFIRM["seeds"]]
    assert not set(CONFIRM["seeds"]) & set(SEEDS) and len(confirm) == 36 and jobs[-36:] == confirm
    assert {(j[0], j[1], j[2]) for j in confirm} == {(a, s, b) for a in CONFIRM["arms"] for s in CONFIRM["sizes"] for b in CONFIRM["budgets"]}
    assert _role(plan, "rope", "L5C20", 8000, 0.01, 1342) == "confirm" and _role(plan, "rope", "L5C20", 8000, 0.01, 1337) == "grid"
    assert _role(plan, "swiglu-rmsnorm", "L5C20", 8000, 0.01, 1342) == "lr-sweep"          # not an arm of the confirmation
