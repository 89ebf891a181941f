"""The `textclf` command and the messages params.yaml mistakes get."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import fixture_params
from textclf.cli import main
from textclf.config import ParamsError, load_params, validate_params

BIN = Path(sys.executable).parent


def _write(tmp_path, params) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return str(path)


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_studies_and_show(tmp_path, capsys, monkeypatch):
    params = _write(tmp_path, fixture_params())
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "--params", params, "studies")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["s", "2", "variants"]
    code, out, _ = _run(capsys, "--params", params, "show", "s/glove")
    assert code == 0 and "full/imdb/s/glove/seed1: not trained yet" in out
    assert '"source": "glove50"' in out and "results/full/imdb/s/glove/seed1/metrics.json" in out
    code, _, err = _run(capsys, "--params", params, "show", "glvoe")
    assert code == 2 and "did you mean 'glove'?" in err
    record = tmp_path / "reports/runs/imdb/s/glove/seed1/record.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"settings_sha256": "other", "trained_at": "2026-12-06T11:00:00Z", "commit": "abc1234"}')
    code, out, _ = _run(capsys, "--params", params, "show", "s/glove")
    assert code == 0 and ("not trained yet; published in reports/runs/imdb/s/glove/seed1 (trained "
                          "2026-12-06T11:00:00Z, commit abc1234, other settings: not reused)") in out


def test_did_you_mean_for_keys_and_values():
    params = fixture_params()
    params["models"]["lstm_base"]["poolin"] = "max"
    params["training"]["padding"] = "buckets"
    with pytest.raises(ParamsError) as info:
        validate_params(params)
    assert "did you mean 'pooling'?" in str(info.value) and "did you mean 'bucket'?" in str(info.value)


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("run:\n  studies: [a, b\n  quick: false\n")
    with pytest.raises(ParamsError, match=r"params.yaml:3:\d+: not valid YAML"):
        load_params(path)
    # an unclosed brace is only found at the end of the file: the message names where it opened
    path.write_text("run:\n  studies: all\nmodel: {cell: lstm,\n  hidden: 8\n")
    with pytest.raises(ParamsError, match=r"params.yaml:5:1: not valid YAML .*flow mapping at line 3, column 8"):
        load_params(path)


def test_did_you_mean_catches_short_transpositions():
    from textclf.config import did_you_mean

    assert did_you_mean("gur", ["rnn", "lstm", "gru", "gru_scratch"]) == " (did you mean 'gru'?)"
    assert did_you_mean("xyz", ["rnn", "lstm", "gru"]) == ""


def test_closed_pipe_is_not_a_traceback(tmp_path):
    params = _write(tmp_path, fixture_params())
    proc = subprocess.run(f"{BIN / 'textclf'} --params {params} variants | head -1", shell=True,
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout.strip() == "full/imdb/s/rand/seed1" and "Traceback" not in proc.stderr


def test_snakemake_refuses_to_start_while_a_dvc_stage_runs(tmp_path):
    import json as _json
    import os

    from textclf.engines import EngineLock

    tmp = tmp_path / ".dvc" / "tmp"
    tmp.mkdir(parents=True)
    rwlock = tmp / "rwlock"
    rwlock.write_text(_json.dumps({"read": {}, "write": {"results/x": {"pid": os.getpid(), "cmd": "dvc repro"}}}))
    with pytest.raises(ParamsError, match="DVC is running a stage in this workspace"):
        EngineLock(tmp_path).acquire()
    dead = 2**22 + 12345  # above the default pid_max: no such process
    rwlock.write_text(_json.dumps({"read": {"data/x": [{"pid": dead, "cmd": "dvc repro"}]}, "write": {}}))
    lock = EngineLock(tmp_path)
    lock.acquire()  # a stale record of a dead process does not block
    try:  # a second Snakemake in the same workspace is told who holds it (not "DVC is running")
        with pytest.raises(ParamsError, match=rf"another Snakemake run \(pid {os.getpid()}\) holds this workspace"):
            EngineLock(tmp_path).acquire()
    finally:
        lock.release()
