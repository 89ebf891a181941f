"""The sweep view (report/sweep.py) on synthetic trials with a known answer."""

import numpy as np

from textclf.report.sweep import importance, sweep_frame, sweep_section

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _trials(n=20, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        hidden, lr, layers = int(rng.choice([75, 100, 150])), float(rng.choice([0.1, 0.01])), int(rng.choice([1, 2]))
        test = 0.9 - (0.3 if lr == 0.1 else 0.0) + 0.001 * rng.normal()  # lr decides, hidden/layers do not
        variant = {"name": f"t{i}", "model": {"hidden": hidden, "layers": layers, "cell": "lstm"},
                   "training": {"seed": 1, "optimizer": {"lr": lr}, "epochs": 5}}
        out.append((variant, {"accuracy": test, "val": {"accuracy": test + 0.01 * rng.normal()}}))
    return out


def test_frame_finds_the_varied_parameters():
    frame, varied = sweep_frame(_trials())
    assert sorted(varied) == ["model.hidden", "model.layers", "training.optimizer.lr"]
    assert len(frame) == 20 and frame["test_accuracy"].notna().all()


def test_importance_ranks_the_parameter_that_matters_first():
    frame, varied = sweep_frame(_trials())
    table = importance(frame, varied)
    assert table.iloc[0]["parameter"] == "training.optimizer.lr"
    assert table.iloc[0]["correlation"] < -0.7  # higher lr, lower accuracy (a two-valued axis: ties cap |rho|)


def test_section_ranks_by_validation_and_draws_the_figure(tmp_path):
    lines = sweep_section("sweep", _trials(), tmp_path)
    text = "\n".join(lines)
    assert "ranked by **validation** accuracy" in text and "Parameter importance" in text
    assert (tmp_path / "sweep_parallel.png").read_bytes()[:8] == PNG_MAGIC
    assert sweep_section("sweep", _trials(2), tmp_path) == []
