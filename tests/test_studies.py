"""Study expansion: names, layering of overrides, grids, duplicates and cross-checks."""

import pytest

from helpers import real_params, with_studies
from textclf.config import ParamsError
from textclf.studies import embedding_name, resolve_variants, variant_by_id


def _study(**extra):
    study = {
        "datasets": ["imdb"],
        "vocab": "basic_min10",
        "model": "lstm_base",
        "set": {"model": {"hidden": 32}, "training": {"epochs": 2}},
        "variants": {"lstm": {}, "gru-bi": {"model": {"cell": "gru", "bidirectional": True}}},
    }
    study.update(extra)
    return study


def test_variants_layer_preset_set_variant():
    params = with_studies(real_params(), {"s": _study()})
    variants = {v["name"]: v for v in resolve_variants(params)}
    assert list(variants) == ["lstm", "gru-bi"]
    gru = variants["gru-bi"]
    assert gru["id"] == "imdb/s/gru-bi"
    assert gru["model"]["cell"] == "gru" and gru["model"]["bidirectional"] is True
    assert gru["model"]["hidden"] == 32  # from set
    assert gru["model"]["layers"] == params["models"]["lstm_base"]["layers"]  # from preset
    assert gru["training"]["epochs"] == 2
    assert gru["training"]["batch_size"] == params["training"]["batch_size"]  # default
    assert gru["quick"] is None


def test_grid_expands_with_readable_names():
    grid = [
        {"name": "len", "key": "training.max_len", "values": [25, 256]},
        {"name": "setup", "values": {"ref": {"model": {"pooling": "padded_last"}}, "fix": {}}},
    ]
    params = with_studies(real_params(), {"s": _study(grid=grid)})
    variants = {v["name"]: v for v in resolve_variants(params)}
    assert sorted(variants) == sorted(
        f"{v}-len{n}-{s}" for v in ("lstm", "gru-bi") for n in (25, 256) for s in ("ref", "fix"))
    assert variants["lstm-len25-ref"]["training"]["max_len"] == 25
    assert variants["lstm-len25-ref"]["model"]["pooling"] == "padded_last"
    assert variants["lstm-len256-fix"]["model"]["pooling"] == "last"


def test_float_grid_labels_and_multiple_datasets():
    grid = [{"name": "lr", "key": "training.optimizer.lr", "values": [0.001, 0.01]}]
    params = with_studies(real_params(), {"s": _study(datasets=["imdb", "ag_news"], grid=grid)})
    ids = [v["id"] for v in resolve_variants(params)]
    assert "imdb/s/lstm-lr0.001" in ids and "ag_news/s/gru-bi-lr0.01" in ids
    assert len(ids) == 8


def test_duplicate_variant_ids_rejected():
    grid = [{"name": "h", "key": "model.hidden", "values": [1, "1"]}]
    params = with_studies(real_params(), {"s": _study(grid=grid)})
    with pytest.raises(ParamsError, match="duplicate variant names"):
        resolve_variants(params)


def test_grid_key_must_name_a_section():
    grid = [{"name": "h", "key": "hidden", "values": [1, 2]}]
    params = with_studies(real_params(), {"s": _study(grid=grid)})
    with pytest.raises(ParamsError, match=r"grid\[0\]\.key"):
        resolve_variants(params)


def test_embedding_dim_mismatch_names_variant_and_keys():
    params = with_studies(real_params(), {"s": _study(
        variants={"glove": {"model": {"embedding": {"source": "glove50", "dim": 100}}}})})
    with pytest.raises(ParamsError) as info:
        resolve_variants(params)
    msg = str(info.value)
    assert "imdb/s/glove" in msg and "model.embedding.dim is 100" in msg and "embeddings.glove50.dim is 50" in msg


def test_unknown_embedding_source_lists_allowed():
    params = with_studies(real_params(), {"s": _study(
        variants={"x": {"model": {"embedding": {"source": "fasttext"}}}})})
    with pytest.raises(ParamsError, match=r"unknown embedding 'fasttext'; allowed: \['random', 'glove100'"):
        resolve_variants(params)


def test_quick_setting_and_lookup_by_id():
    params = with_studies(real_params(), {"s": _study()})
    quick = resolve_variants(params, quick=True)
    assert all(v["quick"] == params["quick"] for v in quick)
    for key in ("epochs", "batch_size", "warmup_steps"):
        assert all(v["training"][key] == min(params["quick"][key], params["training"][key]) for v in quick)
    assert variant_by_id(params, "imdb/s/lstm")["name"] == "lstm"
    with pytest.raises(ParamsError, match="unknown variant 'imdb/s/nope'"):
        variant_by_id(params, "imdb/s/nope")


def test_embedding_name():
    params = with_studies(real_params(), {"s": _study(
        variants={"r": {}, "g": {"model": {"embedding": {"source": "glove50", "dim": 50}}}})})
    names = {v["name"]: embedding_name(v) for v in resolve_variants(params)}
    assert names == {"r": None, "g": "glove50"}


def test_shipped_studies_expand():
    variants = resolve_variants(real_params(), "all")
    assert variants, "params.yaml defines no variant"
    assert len({v["id"] for v in variants}) == len(variants)


def test_variant_level_grid_sweeps_only_that_variant():
    variants = {
        "opt": {"grid": [{"name": "", "values": {"sgd": {"training": {"optimizer": {"name": "sgd"}}},
                                                 "adam": {}}}]},
        "hid": {"grid": [{"name": "h", "key": "model.hidden", "values": [10, 20]}]},
        "plain": {"model": {"cell": "gru"}},
    }
    params = with_studies(real_params(), {"s": _study(variants=variants)})
    resolved = {v["name"]: v for v in resolve_variants(params)}
    assert list(resolved) == ["opt-sgd", "opt-adam", "hid-h10", "hid-h20", "plain"]
    assert resolved["opt-sgd"]["training"]["optimizer"]["name"] == "sgd"
    assert resolved["hid-h20"]["model"]["hidden"] == 20
    assert resolved["plain"]["model"]["hidden"] == 32  # study `set` still applies


def test_every_reference_names_a_variant_of_its_study():
    params = real_params()
    names = {}
    for v in resolve_variants(params, "all"):
        names.setdefault(v["study"], set()).update({v["name"], f"{v['dataset']}/{v['name']}"})
    for study, spec in params["studies"].items():
        unknown = set(spec.get("reference", {})) - names[study]
        assert not unknown, f"studies.{study}.reference names no variant: {sorted(unknown)}"


def test_reference_studies_have_expected_sizes():
    counts = {}
    for v in resolve_variants(real_params(), "all"):
        counts[v["study"]] = counts.get(v["study"], 0) + 1
    assert counts["cells_agnews"] == 6 * 2 * 3 * 2
    assert counts["cells_imdb"] == 6 * 2 * 2
    assert counts["optimizers_imdb"] == 8 + 4 + 8 + 8 + 48 + 3
    assert counts["baselines"] == 4
