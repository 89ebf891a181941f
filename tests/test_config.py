"""params.yaml validation: every bad value fails at once with the key and the allowed values."""

import copy

import pytest
import yaml

from helpers import REPO, real_params
from textclf.config import ParamsError, deep_merge, load_params, select_studies, validate_params


def _error(params) -> str:
    with pytest.raises(ParamsError) as info:
        validate_params(params)
    return str(info.value)


def test_shipped_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert set(params["datasets"]) >= {"ag_news", "imdb"}


def test_unknown_key_names_key_and_allowed_keys():
    params = real_params()
    params["training"]["learning_rate"] = 0.1
    msg = _error(params)
    assert "training: unknown key(s) ['learning_rate']" in msg
    assert "'batch_size'" in msg and "'optimizer'" in msg


def test_wrong_type_names_key_and_value():
    params = real_params()
    params["training"]["optimizer"]["lr"] = "fast"
    assert "training.optimizer.lr: expected number, got 'fast' (str)" in _error(params)


def test_yaml_exponent_without_dot_is_caught():
    # PyYAML (Snakemake's loader) reads 1e-3 as a string; the schema must reject it.
    params = yaml.safe_load((REPO / "params.yaml").read_text().replace("lr: 0.001", "lr: 1e-3", 1))
    assert "training.optimizer.lr: expected number, got '1e-3'" in _error(params)


def test_unknown_enum_value_lists_allowed_values():
    params = real_params()
    params["models"]["lstm_base"]["pooling"] = "foo"
    msg = _error(params)
    assert "models.lstm_base.pooling: 'foo' is not allowed" in msg
    assert "'last'" in msg and "'max'" in msg


def test_unknown_dataset_in_study_lists_datasets():
    params = real_params()
    first = next(iter(params["studies"]))
    params["studies"][first]["datasets"] = ["agnews"]
    msg = _error(params)
    assert f"studies.{first}.datasets: unknown dataset 'agnews'" in msg
    assert "'ag_news'" in msg and "'imdb'" in msg


def test_unknown_download_reference():
    params = real_params()
    params["datasets"]["imdb"]["files"]["archive"] = "imdb/nope.tar.gz"
    assert "datasets.imdb.files.archive: unknown download 'imdb/nope.tar.gz'" in _error(params)


def test_bad_sha256_format():
    params = real_params()
    params["downloads"]["imdb"]["aclImdb_v1.tar.gz"]["sha256"] = "abc"
    assert "downloads.imdb.aclImdb_v1.tar.gz.sha256" in _error(params)


def test_unknown_selected_study():
    params = real_params()
    params["run"]["studies"] = ["nope"]
    assert "run.studies: unknown study 'nope'" in _error(params)


def test_every_problem_is_reported_together():
    params = real_params()
    params["training"]["epochs"] = 0
    params["training"]["padding"] = "left"
    msg = _error(params)
    assert "2 problem(s)" in msg and "training.epochs" in msg and "training.padding" in msg


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "params.yaml")


def test_select_studies_and_deep_merge():
    params = real_params()
    assert select_studies(params, "all") == list(params["studies"])
    with pytest.raises(ParamsError, match="unknown study name"):
        select_studies(params, ["nope"])
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    merged = deep_merge(base, {"a": {"b": 10}})
    assert merged == {"a": {"b": 10, "c": 2}, "d": 3}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}
    assert copy.deepcopy(merged) == merged


def test_duplicate_key_names_both_lines(tmp_path):
    """Issue 38.5: a second `training:` under a study silently replaced the first (1 epoch, not 3)."""
    text = (REPO / "params.yaml").read_text()
    block = "      training: {epochs: 3, batch_size: 64, max_len: 256}\n"
    assert text.count(block) == 1
    head = text[:text.index(block)]
    first = head.count("\n") + 1
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(block, block + "      training: {epochs: 1}\n"))
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}:{first + 1}: duplicate key 'training' (first at line {first},")


def test_yaml_anchors_and_merge_keys_are_not_duplicates(tmp_path):
    from textclf.config import UniqueKeyLoader

    doc = "base: &b {lr: 1, wd: 2}\nuse: {<<: *b, lr: 3}\nagain: *b\n"
    assert yaml.load(doc, Loader=UniqueKeyLoader) == {"base": {"lr": 1, "wd": 2}, "use": {"lr": 3, "wd": 2},
                                                      "again": {"lr": 1, "wd": 2}}
