"""The throughput suite runs end to end on tiny synthetic data and writes its JSON contract
(numbers are not checked: speed targets live in the benchmark, not in timed tests)."""

from __future__ import annotations

import importlib.util
import json

import torch

from textclf.config import REPO_ROOT


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", REPO_ROOT / "benchmarks" / "train_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_suite_writes_one_object_per_config_and_the_sgemm_rate(tmp_path, capsys):
    bench = load_bench()
    data = bench.Data(*bench.synthetic_data(tmp_path / "data", 120), max_rows=120, seed=1)
    configs = [bench._cfg("gru", False, 8, 32, 16, "random"), bench._cfg("gru_scratch", False, 8, 32, 16, "random"),
               bench._cfg("lstm", True, 8, 32, 16, "glove-like")]
    result = bench.run_suite(data, configs, budget=0.05, device=torch.device("cpu"))
    (tmp_path / "out.json").write_text(json.dumps(result, default=str))
    assert result["sgemm_gflops"] > 0
    rows = json.loads((tmp_path / "out.json").read_text())["results"]
    assert [r["config"] for r in rows] == configs
    for row in rows:
        assert {"config", "pipeline_tokens_per_s", "naive_tokens_per_s", "speedup", "achieved_gflops"} <= set(row)
        assert row["speedup"] == row["pipeline_tokens_per_s"] / row["naive_tokens_per_s"] > 0
    assert rows[1]["time_ratio_to_nn_gru"] > 0  # gru_scratch is also compared with nn.GRU
    assert rows[2]["speedup_vs_packed"] > 0  # bidirectional: also the packed pipeline
    assert "sgemm" in capsys.readouterr().out


def test_default_suite_covers_every_cell_direction_and_the_target_configs():
    configs = load_bench().suite_configs(full=False)
    assert {(c["cell"], c["bidirectional"]) for c in configs} == {
        (cell, bi) for cell in ("rnn", "lstm", "gru", "gru_scratch") for bi in (False, True)}
    for value in ({"hidden": 64}, {"hidden": 256}, {"batch_size": 1024}, {"max_len": 25}, {"init": "glove-like"}):
        assert any(c | value == c for c in configs)
    target = {"cell": "lstm", "bidirectional": False, "hidden": 128, "batch_size": 64, "max_len": 256, "init": "random"}
    assert target in configs and target | {"bidirectional": True} in configs
    assert len(load_bench().suite_configs(full=True)) == 192
