"""Study expansion: names, layering of overrides, grids, seeds, duplicates and the checks that
run at plan time (before any job starts)."""

import pytest

from helpers import fixture_params, real_params, with_studies
from textclf.config import ParamsError
from textclf.settings import RNNConfig, variant_from_dict
from textclf.studies import resolve_variants


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


def _params(**study):
    return with_studies(fixture_params(), {"s": _study(**study)})


def test_variants_layer_preset_set_variant():
    params = _params()
    variants = {v.name: v for v in resolve_variants(params)}
    assert list(variants) == ["lstm", "gru-bi"]
    gru = variants["gru-bi"]
    assert gru.id == "imdb/s/gru-bi" and gru.run_id == "full/imdb/s/gru-bi/seed1"
    assert isinstance(gru.model, RNNConfig)
    assert gru.model.cell == "gru" and gru.model.bidirectional is True
    assert gru.model.hidden == 32  # from set
    assert gru.model.layers == params["models"]["lstm_base"]["layers"]  # from preset
    assert gru.training.epochs == 2
    assert gru.training.batch_size == params["training"]["batch_size"]  # default
    assert gru.quick is None and gru.mode == "full"


def test_variant_round_trips_through_its_job_file_form():
    for variant in resolve_variants(_params(), quick=True):
        assert variant_from_dict(variant.to_dict(), "job") == variant


def test_settings_added_later_stay_out_of_job_files_at_their_default():
    """Job files key every cached result: a knob added later (train_fraction, quick.max_len)
    must not change the files of the jobs that leave it at its default, or adding it would
    retrain everything."""
    full, quick = resolve_variants(_params())[0], resolve_variants(_params(), quick=True)[0]
    assert "train_fraction" not in full.to_dict()["training"] and "max_len" not in quick.to_dict()["quick"]
    params = _params(variants={"half": {"training": {"train_fraction": 0.5}}})
    params["quick"]["max_len"] = 64
    for half in resolve_variants(params) + resolve_variants(params, quick=True):
        assert half.to_dict()["training"]["train_fraction"] == 0.5
        assert variant_from_dict(half.to_dict(), "job") == half
    assert resolve_variants(params, quick=True)[0].to_dict()["quick"]["max_len"] == 64


def test_train_fraction_samples_training_rows_only_and_reaches_the_baseline():
    import numpy as np

    from textclf.splits import row_sample

    params = with_studies(fixture_params(), {
        "s": _study(variants={"half": {"training": {"train_fraction": 0.5}}}),
        "b": {"datasets": ["imdb"], "model": "tfidf_logreg", "variants": {"tfidf-half": {"training": {"train_fraction": 0.5}}}}})
    neural, tfidf = resolve_variants(params)
    assert tfidf.training.train_fraction == 0.5
    labels = np.array([0] * 600 + [1] * 400)
    keep = row_sample(neural, "train", labels)
    assert len(keep) == 500 and np.bincount(labels[keep]).tolist() == [300, 200]  # stratified
    assert np.array_equal(keep, row_sample(neural, "train", labels))  # seeded
    assert row_sample(neural, "test", labels) is None and row_sample(neural, "val", labels) is None
    quick = resolve_variants(params, quick=True)[0]
    capped = row_sample(quick, "train", np.array([0, 1] * 10_000))  # the quick cap, then half of it
    assert len(capped) == round(min(20_000, params["quick"]["train_rows"]) / 2)
    bad = with_studies(fixture_params(), {"s": _study(variants={"x": {"training": {"train_fraction": 1.5}}})})
    with pytest.raises(ParamsError, match="train_fraction"):
        resolve_variants(bad)


def test_grid_expands_with_readable_names():
    grid = [
        {"name": "len", "key": "training.max_len", "values": [25, 256]},
        {"name": "setup", "values": {"ref": {"model": {"pooling": "padded_last"},
                                             "training": {"padding": "fixed"}}, "fix": {}}},
    ]
    variants = {v.name: v for v in resolve_variants(_params(grid=grid))}
    assert sorted(variants) == sorted(
        f"{v}-len{n}-{s}" for v in ("lstm", "gru-bi") for n in (25, 256) for s in ("ref", "fix"))
    assert variants["lstm-len25-ref"].training.max_len == 25
    assert variants["lstm-len25-ref"].model.pooling == "padded_last"
    assert variants["lstm-len256-fix"].model.pooling == "last"


def test_float_grid_labels():
    grid = [{"name": "lr", "key": "training.optimizer.lr", "values": [0.001, 0.01]}]
    ids = [v.id for v in resolve_variants(_params(grid=grid))]
    assert ids == ["imdb/s/lstm-lr0.001", "imdb/s/lstm-lr0.01", "imdb/s/gru-bi-lr0.001", "imdb/s/gru-bi-lr0.01"]


def test_seeds_are_replicas_from_run_study_or_argument():
    params = _params(seeds=[1, 2, 3])
    runs = [v.run_id for v in resolve_variants(params)]
    assert runs[:3] == [f"full/imdb/s/lstm/seed{k}" for k in (1, 2, 3)] and len(runs) == 6
    params["run"]["seeds"] = [7]
    assert {v.seed for v in resolve_variants(params)} == {7}
    assert {v.seed for v in resolve_variants(params, seeds=[4, 5])} == {4, 5}
    # adding a seed keeps every existing replica's settings: only the new ones are new
    two = {v.run_id: v for v in resolve_variants(params, seeds=[4, 5])}
    three = {v.run_id: v for v in resolve_variants(params, seeds=[4, 5, 6])}
    assert all(three[k] == v for k, v in two.items()) and len(three) - len(two) == 2


def test_duplicate_variant_ids_rejected():
    grid = [{"name": "h", "key": "model.hidden", "values": [1, "1"]}]
    with pytest.raises(ParamsError, match="duplicate variant names"):
        resolve_variants(_params(grid=grid))


def test_grid_key_must_name_a_section():
    grid = [{"name": "h", "key": "hidden", "values": [1, 2]}]
    with pytest.raises(ParamsError, match=r"grid\[0\]\.key"):
        resolve_variants(_params(grid=grid))


def test_embedding_dim_comes_from_the_source():
    params = _params(variants={"glove": {"model": {"embedding": {"source": "glove50"}}}})
    (variant,) = resolve_variants(params)
    assert variant.model.embedding.dim == 50 and variant.embedding == "glove50"
    params["embeddings"]["glove50"]["member"] = "glove.6B.100d.txt"  # one edit switches the vectors
    (variant,) = resolve_variants(params)
    assert variant.model.embedding.dim == 100


def test_unknown_embedding_source_lists_allowed():
    params = _params(variants={"x": {"model": {"embedding": {"source": "fasttext"}}}})
    with pytest.raises(ParamsError, match=r"unknown embedding 'fasttext'; allowed: \['random', 'glove50'\]"):
        resolve_variants(params)


def test_quick_setting_caps_in_the_resolved_variant():
    params = _params()
    quick = resolve_variants(params, quick=True)
    assert all(v.mode == "quick" and v.quick.train_rows == params["quick"]["train_rows"] for v in quick)
    for key in ("epochs", "batch_size", "warmup_steps"):
        assert all(getattr(v.training, key) == min(params["quick"][key], params["training"][key]) for v in quick)
    assert all(v.training.max_len == params["training"]["max_len"] for v in quick)  # no max_len cap: untouched
    params["quick"]["max_len"] = 7
    assert all(v.training.max_len == min(7, params["training"]["max_len"]) for v in resolve_variants(params, quick=True))
    assert all(v.training.max_len == params["training"]["max_len"] for v in resolve_variants(params))  # full: never


@pytest.mark.parametrize(("overrides", "match"), [
    ({"model": {"pooling": "padded_last"}}, "padded_last"),
    ({"training": {"eval_split": "test", "report_epoch": "best"}}, "select the model on the test set"),
    ({"model": {"embedding": {"skip_missing": True}}}, "skip_missing drops the words without a pre-trained vector"),
    ({"training": {"train_loss_window": 800}}, "train_loss_window selects the weights of the lowest training-loss window"),
])
def test_incoherent_reference_switches_are_rejected_at_plan_time(overrides, match):
    with pytest.raises(ParamsError, match=match):
        resolve_variants(_params(variants={"x": overrides}))


def test_zero_validation_split_needs_test_selection():
    params = _params()
    params["datasets"]["imdb"]["split"]["val_fraction"] = 0
    with pytest.raises(ParamsError, match="val_fraction is 0"):
        resolve_variants(params)
    params["training"].update(eval_split="test", report_epoch="last")
    assert resolve_variants(params)


def test_training_on_train_plus_val_needs_test_evaluation_and_a_matching_vocab():
    params = _params(variants={"x": {"training": {"train_split": "train+val"}}})
    with pytest.raises(ParamsError, match="train_split 'train\\+val' trains on the validation rows"):
        resolve_variants(params)
    params = _params(variants={"x": {"training": {"train_split": "train+val", "eval_split": "test",
                                                   "report_epoch": "last"}}})
    with pytest.raises(ParamsError, match="counts the train split only"):
        resolve_variants(params)
    params["vocabs"]["basic_min10"]["source"] = "train+val"
    (variant,) = resolve_variants(params)
    assert variant.training.train_split == "train+val"


def test_fidelity_switches_resolve_into_the_typed_configs():
    params = _params(variants={"x": {
        "model": {"init": "reference", "output": "softmax", "embedding_dropout": 0.0, "dropout": 0.2,
                  "layers": 2, "pooling": "mean", "pool_padding": True, "head": "mlp_tanh"},
        "training": {"report_epoch": "lowest_train_loss"}}})
    (variant,) = resolve_variants(params)
    assert (variant.model.init, variant.model.output, variant.model.embedding_dropout) == ("reference", "softmax", 0.0)
    assert variant.model.pool_padding and variant.model.head == "mlp_tanh"
    assert variant.training.report_epoch == "lowest_train_loss"
    defaults = resolve_variants(_params())[0]
    assert (defaults.model.init, defaults.model.output, defaults.model.pool_padding) == ("torch", "logits", False)
    assert defaults.model.embedding_dropout is None and defaults.training.train_split == "train"


def test_shipped_ref_variants_use_the_fidelity_switches():
    variants = {v.id: v for v in resolve_variants(real_params(), "all")}
    adam_gru = variants["imdb_35_5_10/optimizers_imdb/opt-adam-gru"]
    assert adam_gru.model.init == "reference" and adam_gru.training.report_epoch == "last"
    assert adam_gru.model.embedding_dropout == 0.0 and adam_gru.model.pooling == "last_output"
    for name in ("layers-l2", "hidden-h150", "emb-e32", "compound-l2-h305-e32", "winner-bilstm"):
        assert variants[f"imdb_35_5_10/optimizers_imdb/{name}"].training.optimizer.name == "rmsprop"
    cells = variants["ag_news/cells_agnews/rnn-l1-len50-rand-ref"]
    assert cells.model.output == "softmax" and cells.training.train_split == "train+val"
    assert variants["ag_news/cells_agnews/rnn-l1-len50-rand-fix"].model.output == "logits"
    pooling = variants["ag_news/pooling_agnews/bilstm-l3-ref"]
    assert pooling.model.pooling == "mean" and pooling.model.pool_padding and pooling.model.head == "mlp_tanh"
    assert pooling.model.head_dropout == 0.1 and pooling.model.dropout == 0.0
    bigru = variants["imdb/gru_scratch/bigru-glove50-ref"]
    assert bigru.model.pooling == "last_output" and bigru.model.head == "relu_linear"
    assert bigru.training.batch_size == 1 and bigru.training.report_epoch == "lowest_train_loss"
    assert variants["imdb_004/sweep_imdb/lstm-best004"].vocab == "spacy_20k"


def test_quick_row_caps_too_small_to_train_are_rejected():
    params = _params()
    params["quick"]["train_rows"] = 5
    with pytest.raises(ParamsError, match="too small to train"):
        resolve_variants(params, quick=True)


def test_variant_level_grid_sweeps_only_that_variant():
    variants = {
        "opt": {"grid": [{"name": "", "values": {"sgd": {"training": {"optimizer": {"name": "sgd"}}},
                                                 "adam": {}}}]},
        "hid": {"grid": [{"name": "h", "key": "model.hidden", "values": [10, 20]}]},
        "plain": {"model": {"cell": "gru"}},
    }
    resolved = {v.name: v for v in resolve_variants(_params(variants=variants))}
    assert list(resolved) == ["opt-sgd", "opt-adam", "hid-h10", "hid-h20", "plain"]
    assert resolved["opt-sgd"].training.optimizer.name == "sgd"
    assert resolved["hid-h20"].model.hidden == 20
    assert resolved["plain"].model.hidden == 32  # study `set` still applies


# ------------------------------------------------- the project's own params.yaml
def test_shipped_studies_expand():
    variants = resolve_variants(real_params(), "all")
    assert variants, "params.yaml defines no variant"
    assert len({v.run_id for v in variants}) == len(variants)


def test_every_reference_names_a_variant_of_its_study():
    params = real_params()
    names = {}
    for v in resolve_variants(params, "all"):
        names.setdefault(v.study, set()).update({v.name, f"{v.dataset}/{v.name}"})
    for study, spec in params["studies"].items():
        unknown = set(spec.get("reference", {})) - names[study]
        assert not unknown, f"studies.{study}.reference names no variant: {sorted(unknown)}"


def test_reference_studies_have_expected_sizes():
    counts = {}
    for v in resolve_variants(real_params(), "all"):
        counts[v.study] = counts.get(v.study, 0) + 1
    assert counts["cells_agnews"] == 6 * 2 * 3 * 2
    assert counts["cells_imdb"] == 6 * 2 * 2
    assert counts["optimizers_imdb"] == 8 + 4 + 8 + 8 + 48 + 5  # winners: bilstm, gru, bigru + 2 bidirectional reruns
    assert counts["baselines"] == 5  # one TF-IDF row per dataset, imdb_004 included
    assert counts["sweep_imdb"] == 30
    assert counts["best_imdb"] == 2 * 2  # {bigru, bilstm} x {max, attention}
    assert counts["best_agnews"] == 2 * 2 * 3  # the same grid, three seeds
    assert counts["trainsize_agnews"] == 2 * 3 * 3  # {bigru-max, tfidf} x {25, 50, 100 %} x three seeds


# ------------------------------------------------- search spaces (W&B-style sweeps)
SPACE = {"model.hidden": [8, 16, 32], "training.optimizer.lr": [0.1, 0.01],
         "dropout": {"d0": {"model": {"dropout": 0.0}}, "d5": {"model": {"dropout": 0.5}}}}


def test_grid_search_expands_every_point():
    params = _params(variants={"lstm": {"search": {"method": "grid", "space": SPACE}}})
    names = [v.name for v in resolve_variants(params)]
    assert len(names) == 3 * 2 * 2 and len(set(names)) == 12
    assert "lstm-h16-lr0.01-d5" in names


def test_random_search_is_reproducible_and_stable_as_trials_grow():
    def names(trials, seed=4):
        search = {"method": "random", "trials": trials, "seed": seed, "space": SPACE}
        return [v.name for v in resolve_variants(_params(variants={"lstm": {"search": search}}))]

    assert names(5) == names(5) and len(set(names(5))) == 5
    assert names(8)[:5] == names(5)  # raising trials keeps the first draws: only 3 new variants
    assert names(5, seed=5) != names(5)
    (variant,) = [v for v in resolve_variants(_params(variants={"lstm": {"search": {
        "method": "random", "trials": 1, "seed": 4, "space": SPACE}}}))]
    hidden = int(variant.name.split("-h")[1].split("-")[0])
    assert variant.model.hidden == hidden  # the name says what the variant runs


@pytest.mark.parametrize(("search", "match"), [
    ({"method": "random", "trials": 3, "space": {}}, "space: empty"),
    ({"method": "random", "trials": 3, "space": {"model.hidden": [8, 8]}}, "duplicate values"),
    ({"method": "random", "trials": 3, "space": {"hidden": [8, 16]}}, "must start with one of"),
    ({"method": "random", "trials": 9, "space": {"model.hidden": [8, 16]}}, "9 > the 2 distinct points"),
    ({"method": "random", "space": {"model.hidden": [8, 16]}}, "needs `trials`"),
    ({"method": "grid", "trials": 2, "space": {"model.hidden": [8, 16]}}, "only used with method 'random'"),
])
def test_bad_search_spaces_are_rejected(search, match):
    with pytest.raises(ParamsError, match=match):
        resolve_variants(_params(variants={"lstm": {"search": search}}))


def test_sweep_imdb_reproduces_seed_004():
    variants = [v for v in resolve_variants(real_params(), ["sweep_imdb"])]
    assert len(variants) == 2 * 14 + 2
    lstm = [v for v in variants if v.name.startswith("lstm-ep")]
    assert len(lstm) == 14 and all(v.training.optimizer.lr in (0.1, 0.01, 0.005) for v in lstm)
    best = next(v for v in variants if v.name == "lstm-best004")
    assert (best.training.batch_size, best.model.dropout, best.training.epochs, best.training.optimizer.lr,
            best.model.hidden, best.model.layers) == (128, 0.25, 8, 0.005, 100, 2)


def test_a_dim_that_contradicts_the_source_names_both():
    """Issue 38.5: `{source: glove50, dim: 100}` silently became 50 (and reused the 50d run)."""
    params = _params(variants={"g": {"model": {"embedding": {"source": "glove50", "dim": 100}}}})
    with pytest.raises(ParamsError) as info:
        resolve_variants(params)
    msg = str(info.value)
    assert "imdb/s/g: model.embedding.dim 100 contradicts model.embedding.source 'glove50'" in msg
    assert "embeddings.glove50 holds 50-dimensional vectors" in msg
    # a dim set in a later layer than the source contradicts it too
    params = _params(set={"model": {"embedding": {"source": "glove50"}}}, variants={"g": {"model": {"embedding": {"dim": 8}}}})
    with pytest.raises(ParamsError, match="dim 8 contradicts model.embedding.source 'glove50'"):
        resolve_variants(params)


def test_a_dim_the_source_replaces_or_names_is_no_contradiction():
    # the preset's dim (lstm_base) is a default that choosing the source replaces
    assert params_dims(_params(variants={"g": {"model": {"embedding": {"source": "glove50"}}}})) == [50]
    assert params_dims(_params(variants={"g": {"model": {"embedding": {"source": "glove50", "dim": 50}}}})) == [50]
    # glove100 pointed at the 50d member (the offline substitution params.yaml makes on purpose)
    params = _params(variants={"g": {"model": {"embedding": {"source": "glove100", "dim": 100}}}})
    params["embeddings"]["glove100"] = dict(params["embeddings"]["glove50"])
    assert params_dims(params) == [50]
    params["studies"]["s"]["variants"]["g"]["model"]["embedding"]["dim"] = 64
    with pytest.raises(ParamsError, match="dim 64 contradicts model.embedding.source 'glove100'"):
        resolve_variants(params)


def params_dims(params) -> list[int]:
    return [v.model.embedding.dim for v in resolve_variants(params)]
