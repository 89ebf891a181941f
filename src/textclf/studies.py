"""Expand named studies into concrete, fully resolved, checked variants.

This is the ONE place where a study becomes variants; the plan (both engines), the CLI and the
report read its output. Every rule about a resolved value is checked here, at plan time,
before any job starts.

A variant's settings are layered, later wins:
    models[<preset>] + training  ←  study.set  ←  study.variants[<name>]  ←  one grid point
Grid axes come from the variant's own `grid` (a sweep of that variant only) and then from the
study's `grid` (applied to every variant). Grid points append ``-<axis><value>`` (scalar axes)
or ``-<key>`` (named override sets) to the name. Each variant is trained once per seed
(``run.seeds``, else the study's ``seeds``, else ``[training.seed]``) and per mode (full, or
quick with the `quick` caps): a replica's results live in ``results/<mode>/<dataset>/<study>/
<name>/seed<k>/``.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from textclf.config import ParamsError, deep_merge, did_you_mean, embedding_dim, select_studies
from textclf.settings import (
    QuickCaps,
    RNNConfig,
    TrainingConfig,
    Variant,
    from_dict,
    model_config,
)

OVERRIDE_SECTIONS = ("model", "training")
# The TF-IDF baseline reads only the seed (and train_fraction) of `training`: its other keys are fixed here, so an
# edit to the neural training defaults (epochs, batch size, ...) does not rerun it.
BASELINE_TRAINING: dict[str, Any] = {
    "seed": 0, "epochs": 1, "batch_size": 1, "max_len": 1, "padding": "bucket",
    "optimizer": {"name": "sgd", "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0, "eps": 1.0},
    "warmup_steps": 0, "clip_grad_norm": None, "early_stopping_patience": None, "eval_split": "val",
    "report_epoch": "last", "device": "cpu", "amp": False, "sparse_embeddings": False,
}
MODES = ("full", "quick")


def mode_name(quick: bool) -> str:
    return "quick" if quick else "full"


def study_seeds(params: Mapping[str, Any], study: str, training_seed: int,
                seeds: Iterable[int] | None = None) -> list[int]:
    """Replica seeds: the `seeds` argument (Snakemake --config seeds=), else run.seeds, else
    the study's `seeds`, else the variant's own training.seed."""
    chosen = seeds if seeds is not None else params["run"].get("seeds")
    chosen = chosen if chosen is not None else params["studies"][study].get("seeds")
    return [int(s) for s in chosen] if chosen is not None else [training_seed]


def resolve_variants(
    params: Mapping[str, Any],
    studies: Iterable[str] | str | None = None,
    *,
    quick: bool | None = None,
    seeds: Iterable[int] | None = None,
) -> list[Variant]:
    """Every replica of the selected studies (default: run.studies), in a stable order.

    `quick` overrides run.quick; `seeds` overrides run.seeds and the studies' seeds. Raises
    ParamsError for duplicate ids and for any setting that would fail once jobs run.
    """
    selected = select_studies(params, studies)
    use_quick = params["run"]["quick"] if quick is None else quick
    caps = from_dict(QuickCaps, params["quick"], "quick") if use_quick else None
    variants: list[Variant] = []
    seen: dict[str, str] = {}
    for study_name in selected:
        study = params["studies"][study_name]
        for dataset in study["datasets"]:
            for name, overrides in _expand(study_name, study):
                base = _resolve_one(params, study_name, study, dataset, name, overrides, caps)
                if base.id in seen:
                    raise ParamsError(
                        f"studies.{study_name}: variant id {base.id!r} is produced twice "
                        f"(also by {seen[base.id]}); rename a variant or a grid value"
                    )
                seen[base.id] = f"studies.{study_name}"
                for seed in study_seeds(params, study_name, base.training.seed, seeds):
                    variants.append(dataclasses.replace(
                        base, training=dataclasses.replace(base.training, seed=seed)))
    return variants


def apply_quick(training: Mapping[str, Any], quick: QuickCaps) -> dict[str, Any]:
    """The quick setting caps epochs, batch size, warm-up and (when set) max_len; rows are
    sampled by the trainer. The effective values show in the variant's config, its results and
    the report."""
    out = dict(training)
    for key in ("epochs", "batch_size", "warmup_steps", "max_len"):
        cap = getattr(quick, key)
        if cap is not None:
            out[key] = min(training[key], cap)
    return out


def _expand(study_name: str, study: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, merged overrides) for every variant × grid point × search point."""
    study_axes = [_axis_points(f"studies.{study_name}.grid[{i}]", axis)
                  for i, axis in enumerate(study.get("grid", []))]
    if "search" in study:
        study_axes.append(search_points(f"studies.{study_name}.search", study["search"]))
    out = []
    for vname, voverrides in study["variants"].items():
        where = f"studies.{study_name}.variants.{vname}"
        own = dict(voverrides)
        axes = [_axis_points(f"{where}.grid[{i}]", axis) for i, axis in enumerate(own.pop("grid", []))]
        if "search" in own:
            axes.append(search_points(f"{where}.search", own.pop("search")))
        axes += study_axes
        for combo in itertools.product(*axes) if axes else [()]:
            name = "-".join([vname, *(suffix for suffix, _ in combo if suffix)])
            merged = deep_merge(study.get("set", {}), own)
            for _, point in combo:
                merged = deep_merge(merged, point)
            out.append((name, merged))
    return out


def _axis_points(where: str, axis: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name suffix, overrides) for each value of one grid axis."""
    values = axis["values"]
    if isinstance(values, Mapping):
        if "key" in axis:
            raise ParamsError(f"{where}: 'key' is only used with a list of values, not named override sets")
        return [(str(label), dict(overrides)) for label, overrides in values.items()]
    key = axis.get("key")
    if not key:
        raise ParamsError(f"{where}: a list of values needs 'key' (a dotted key such as model.hidden)")
    section, _, rest = key.partition(".")
    if section not in (*OVERRIDE_SECTIONS, "vocab") or (section != "vocab" and not rest):
        raise ParamsError(f"{where}.key: {key!r} must start with one of {list(OVERRIDE_SECTIONS)} or be 'vocab'")
    points = []
    for value in values:
        points.append((f"{axis['name']}{_label(value)}", _nest(key, value)))
    labels = [p[0] for p in points]
    if len(set(labels)) != len(labels):
        raise ParamsError(f"{where}: values {values!r} give duplicate variant names {labels}")
    return points


# Short name prefixes for common searched keys (others use the key's last part).
KEY_LABELS = {"epochs": "ep", "batch_size": "b", "dropout": "d", "head_dropout": "hd", "hidden": "h",
              "layers": "l", "lr": "lr", "max_len": "len", "weight_decay": "wd", "dim": "e"}


def search_points(where: str, search: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name suffix, overrides) of a study's `search`: the full grid, or `trials` random points.

    Random points are drawn one after another from a generator seeded with `seed`, without
    repeats, so raising `trials` from 14 to 20 keeps the first 14 and adds 6. Each space entry
    is a dotted key with a list of values (`model.hidden: [75, 100]`), or a label with named
    override sets (`dropout: {d0.25: {model: {dropout: 0.25, head_dropout: 0.25}}, ...}`).
    """
    space = search.get("space") or {}
    if not space:
        raise ParamsError(f"{where}.space: empty; give at least one key with a list of values")
    axes = [_space_axis(f"{where}.space.{key}", key, values) for key, values in space.items()]
    size = 1
    for axis in axes:
        size *= len(axis)
    if search["method"] == "grid":
        if "trials" in search:
            raise ParamsError(f"{where}.trials: only used with method 'random' (grid runs all {size} points)")
        combos = list(itertools.product(*axes))
    else:
        trials = search.get("trials")
        if not trials:
            raise ParamsError(f"{where}: method 'random' needs `trials` (how many points to draw)")
        if trials > size:
            raise ParamsError(f"{where}.trials: {trials} > the {size} distinct points of the space; "
                              "lower it or use method 'grid'")
        rng = np.random.default_rng(search.get("seed", 0))
        picked: list[tuple[int, ...]] = []
        while len(picked) < trials:
            point = tuple(int(rng.integers(len(axis))) for axis in axes)
            if point not in picked:
                picked.append(point)
        combos = [tuple(axis[i] for axis, i in zip(axes, point, strict=True)) for point in picked]
    out = []
    for combo in combos:
        merged: dict[str, Any] = {}
        for _, overrides in combo:
            merged = deep_merge(merged, overrides)
        out.append(("-".join(suffix for suffix, _ in combo), merged))
    return out


def _space_axis(where: str, key: str, values: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(values, Mapping):
        if not values:
            raise ParamsError(f"{where}: no values")
        return [(str(label), dict(overrides)) for label, overrides in values.items()]
    if not isinstance(values, list) or not values:
        raise ParamsError(f"{where}: expected a non-empty list of values")
    section, _, rest = key.partition(".")
    if section not in OVERRIDE_SECTIONS or not rest:
        raise ParamsError(f"{where}: {key!r} must start with one of {list(OVERRIDE_SECTIONS)}")
    if len({repr(v) for v in values}) != len(values):
        raise ParamsError(f"{where}: duplicate values in {values!r}")
    prefix = KEY_LABELS.get(key.rsplit(".", 1)[-1], key.rsplit(".", 1)[-1])
    return [(f"{prefix}{_label(v)}", _nest(key, v)) for v in values]


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def _resolve_one(
    params: Mapping[str, Any],
    study_name: str,
    study: Mapping[str, Any],
    dataset: str,
    name: str,
    overrides: Mapping[str, Any],
    caps: QuickCaps | None,
) -> Variant:
    where = f"{dataset}/{study_name}/{name}"
    preset = overrides.get("preset", study["model"])
    if preset not in params["models"]:
        raise ParamsError(f"{where}: unknown model preset {preset!r}; allowed: {sorted(params['models'])}")
    model = deep_merge(params["models"][preset], overrides.get("model", {}))
    training = deep_merge(params["training"], overrides.get("training", {}))
    if caps is not None:
        training = apply_quick(training, caps)
    if model.get("type") == "rnn":
        _check_embedding_dim(params, params["models"][preset], overrides.get("model", {}), where)
        model = _embedding_from_source(params, model, where)
    else:  # the baseline's preset carries no rnn keys; a study `set` for rnn variants may
        model = {k: v for k, v in model.items() if k in {"type", "ngram_max", "min_df", "max_features", "C"}}
        training = {**BASELINE_TRAINING, "seed": training["seed"],
                    **({"train_fraction": training["train_fraction"]} if "train_fraction" in training else {})}
    variant = Variant(
        dataset=dataset,
        study=study_name,
        name=name,
        mode=mode_name(caps is not None),
        vocab=overrides.get("vocab", study.get("vocab")) if model["type"] == "rnn" else None,
        model=model_config(model, f"{where}: model"),
        training=from_dict(TrainingConfig, training, f"{where}: training"),
        quick=caps,
    )
    check_variant(params, variant)
    return variant


def _embedding_from_source(params: Mapping[str, Any], model: dict[str, Any], where: str) -> dict[str, Any]:
    """A pre-trained source fixes the embedding width (its vectors' dimension)."""
    source = model.get("embedding", {}).get("source", "random")
    if source == "random":
        return model
    if source not in params["embeddings"]:
        allowed = ["random", *sorted(params["embeddings"])]
        raise ParamsError(f"{where}: model.embedding.source: unknown embedding {source!r}; allowed: {allowed}")
    return deep_merge(model, {"embedding": {"dim": embedding_dim(params["embeddings"][source])}})


# glove100, glove100_004: GloVe entries named for a size (the reference's); offline they point at
# the mirror's 50d member on purpose, and the report labels those runs "glove100 50d"
_NAMED_SIZE = re.compile(r"^glove(\d+)(?:_\w+)?$")


def _check_embedding_dim(params: Mapping[str, Any], preset: Mapping[str, Any],
                         overrides: Mapping[str, Any], where: str) -> None:
    """A `dim` written beside (or after) a pre-trained source must be that source's width:
    `{source: glove50, dim: 100}` used to become 50 silently. A dim the preset set before a
    variant chose the source is a default the source replaces; the size a GloVe entry is named
    for (glove100 pointed at the 50d member offline) is the deliberate substitution."""
    emb_over = (overrides.get("embedding") or {}) if isinstance(overrides, Mapping) else {}
    emb_preset = preset.get("embedding") or {}
    source = emb_over.get("source", emb_preset.get("source", "random"))
    if source == "random" or source not in params["embeddings"]:
        return  # random has no width of its own; an unknown source is reported by the caller
    layer = "variant" if "dim" in emb_over else "preset" if "source" not in emb_over else None
    dim = (emb_over if layer == "variant" else emb_preset).get("dim") if layer else None
    if dim is None:
        return
    entry = params["embeddings"][source]
    width = embedding_dim(entry)
    named = _NAMED_SIZE.match(source) if entry.get("type") == "glove" else None
    if dim == width or (named and int(named.group(1)) == dim):
        return
    origin = f"member {entry['member']!r}" if "dim" not in entry and entry.get("member") else "its dim"
    raise ParamsError(f"{where}: model.embedding.dim {dim} contradicts model.embedding.source {source!r}: "
                      f"embeddings.{source} holds {width}-dimensional vectors ({origin}); drop dim (the "
                      f"source sets it) or set it to {width}")


def check_variant(params: Mapping[str, Any], variant: Variant) -> None:
    """Cross-checks of one resolved variant (the schema checked names and types already)."""
    vid, training = variant.id, variant.training
    if not 0.0 < training.train_fraction <= 1.0:
        raise ParamsError(f"{vid}: training.train_fraction {training.train_fraction} must be in (0, 1] (the "
                          "fraction of the training rows to train on)")
    if training.eval_split == "test" and training.report_epoch == "best":
        raise ParamsError(f"{vid}: training.report_epoch 'best' with eval_split 'test' would select the "
                          "model on the test set; use eval_split 'val', or report_epoch 'last' (the reference)")
    split = params["datasets"][variant.dataset]["split"]
    if split["val_fraction"] == 0 and training.eval_split == "val":
        raise ParamsError(f"{vid}: datasets.{variant.dataset}.split.val_fraction is 0 (no validation split) "
                          "but training.eval_split is 'val'; set a val_fraction or eval_split 'test'")
    if training.train_loss_window and training.report_epoch != "lowest_train_loss":
        raise ParamsError(f"{vid}: training.train_loss_window selects the weights of the lowest training-loss "
                          f"window; it needs report_epoch 'lowest_train_loss', not {training.report_epoch!r}")
    if training.train_split == "train+val" and training.eval_split == "val":
        raise ParamsError(f"{vid}: training.train_split 'train+val' trains on the validation rows, so "
                          "training.eval_split 'val' would evaluate on training data; use eval_split 'test' "
                          "with report_epoch 'last' or 'lowest_train_loss' (the reference)")
    classes = len(params["datasets"][variant.dataset]["classes"])
    if variant.quick is not None and min(variant.quick.train_rows, variant.quick.eval_rows) < 10 * classes:
        raise ParamsError(f"quick.train_rows / quick.eval_rows ({variant.quick.train_rows} / "
                          f"{variant.quick.eval_rows}) are too small to train {vid} ({classes} classes): "
                          f"use at least {10 * classes}")
    model = variant.model
    if not isinstance(model, RNNConfig):
        return
    if model.output == "binary_logit" and classes != 2:
        raise ParamsError(f"{vid}: model.output 'binary_logit' (one logit, seed 004) is for two classes; "
                          f"{variant.dataset} has {classes}: use output 'logits'")
    if not variant.vocab:
        raise ParamsError(f"{vid}: a neural variant needs a vocabulary: set studies.{variant.study}.vocab")
    if variant.vocab not in params["vocabs"]:
        raise ParamsError(f"params.yaml studies.{variant.study} ({vid}): vocab: unknown vocab {variant.vocab!r}"
                          f"{did_you_mean(variant.vocab, params['vocabs'])}; allowed: {sorted(params['vocabs'])}")
    if model.pool_padding and model.pooling not in ("max", "mean", "attention"):
        raise ParamsError(f"{vid}: model.pool_padding pools over every position (padding included); "
                          f"it needs pooling max, mean or attention, not {model.pooling!r}")
    vocab_source = params["vocabs"][variant.vocab].get("source", "train")
    if training.train_split == "train+val" and vocab_source == "train":
        raise ParamsError(f"{vid}: training.train_split 'train+val' but vocab {variant.vocab!r} counts the "
                          "train split only (source 'train'); use a vocab with source 'train+val' (or "
                          "'train+test', the reference's leakage)")
    if model.embedding.skip_missing and model.embedding.source == "random":
        raise ParamsError(f"{vid}: model.embedding.skip_missing drops the words without a pre-trained vector, "
                          "but model.embedding.source is 'random' (no vectors); set a pre-trained source or "
                          "skip_missing: false")
    if model.pooling == "padded_last" and training.padding != "fixed":
        raise ParamsError(f"{vid}: model.pooling 'padded_last' reproduces the reference flaw only with "
                          "training.padding 'fixed' (every row padded to max_len); set it")
