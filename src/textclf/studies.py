"""Expand named studies into concrete, fully resolved model variants.

This is the ONE place where a study becomes variants; the Snakefile, the dvc.yaml generator,
the train script and the report all call `resolve_variants`.

A variant's settings are layered, later wins:
    models[<preset>] + training  ←  study.set  ←  study.variants[<name>]  ←  one grid point
Grid axes come from the variant's own `grid` (a sweep of that variant only) and then from the
study's `grid` (applied to every variant). Its id is ``<dataset>/<study>/<name>`` and its
results live in ``results/<id>/``. Grid points append ``-<axis><value>`` (scalar axes) or
``-<key>`` (named override sets) to the name.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from textclf.config import ParamsError, deep_merge, select_studies

OVERRIDE_SECTIONS = ("model", "training")


def resolve_variants(
    params: Mapping[str, Any],
    studies: Iterable[str] | str | None = None,
    *,
    quick: bool | None = None,
) -> list[dict[str, Any]]:
    """All variants of the selected studies (default: run.studies), in a stable order.

    `quick` overrides run.quick. Raises ParamsError for duplicate ids, unknown embedding
    sources, a GloVe/word2vec dim that differs from the model's embedding dim, or a neural
    variant without a vocabulary.
    """
    selected = select_studies(params, studies)
    use_quick = params["run"]["quick"] if quick is None else quick
    variants: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for study_name in selected:
        study = params["studies"][study_name]
        for dataset in study["datasets"]:
            for name, point_overrides, point_keys in _expand(study_name, study):
                variant = _resolve_one(params, study_name, study, dataset, name, point_overrides)
                variant["quick"] = dict(params["quick"]) if use_quick else None
                if use_quick:
                    variant["training"] = apply_quick(variant["training"], params["quick"])
                variant["param_keys"] = point_keys
                if variant["id"] in seen:
                    raise ParamsError(
                        f"studies.{study_name}: variant id {variant['id']!r} is produced twice "
                        f"(also by {seen[variant['id']]}); rename a variant or a grid value"
                    )
                seen[variant["id"]] = f"studies.{study_name}"
                variants.append(variant)
    return variants


def apply_quick(training: Mapping[str, Any], quick: Mapping[str, Any]) -> dict[str, Any]:
    """The quick setting caps epochs, batch size and warm-up (rows are sampled by the trainer),
    so the effective values show in the variant's config, its results and the report."""
    out = dict(training)
    for key in ("epochs", "batch_size", "warmup_steps"):
        out[key] = min(training[key], quick[key])
    return out


def variant_by_id(params: Mapping[str, Any], variant_id: str, *, quick: bool | None = None) -> dict[str, Any]:
    """Look one variant up by id among ALL studies (not only the selected ones)."""
    for variant in resolve_variants(params, "all", quick=quick):
        if variant["id"] == variant_id:
            return variant
    known = [v["id"] for v in resolve_variants(params, "all", quick=quick)]
    hint = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
    raise ParamsError(f"unknown variant {variant_id!r}; known variants: {hint}")


def _expand(study_name: str, study: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(name, merged overrides, params.yaml keys read) for every variant × grid point."""
    base_keys = [f"studies.{study_name}.model"]
    if "set" in study:
        base_keys.append(f"studies.{study_name}.set")
    if study.get("grid"):
        base_keys.append(f"studies.{study_name}.grid")
    study_axes = [_axis_points(f"studies.{study_name}.grid[{i}]", axis)
                  for i, axis in enumerate(study.get("grid", []))]
    out = []
    for vname, voverrides in study["variants"].items():
        where = f"studies.{study_name}.variants.{vname}"
        keys = [*base_keys, where]
        own = dict(voverrides)
        axes = [_axis_points(f"{where}.grid[{i}]", axis) for i, axis in enumerate(own.pop("grid", []))]
        axes += study_axes
        for combo in itertools.product(*axes) if axes else [()]:
            name = "-".join([vname, *(suffix for suffix, _ in combo if suffix)])
            merged = deep_merge(study.get("set", {}), own)
            for _, point in combo:
                merged = deep_merge(merged, point)
            out.append((name, merged, keys))
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
) -> dict[str, Any]:
    variant_id = f"{dataset}/{study_name}/{name}"
    preset = overrides.get("preset", study["model"])
    if preset not in params["models"]:
        raise ParamsError(f"{variant_id}: unknown model preset {preset!r}; allowed: {sorted(params['models'])}")
    model = deep_merge(params["models"][preset], overrides.get("model", {}))
    training = deep_merge(params["training"], overrides.get("training", {}))
    vocab = overrides.get("vocab", study.get("vocab"))
    variant = {
        "id": variant_id,
        "dataset": dataset,
        "study": study_name,
        "name": name,
        "preset": preset,
        "vocab": vocab,
        "model": model,
        "training": training,
    }
    _check_variant(params, variant)
    return variant


def _check_variant(params: Mapping[str, Any], variant: Mapping[str, Any]) -> None:
    """Cross-checks that need the resolved variant (the schema checked types already)."""
    vid, model = variant["id"], variant["model"]
    if model["type"] == "tfidf_logreg":
        return
    if not variant["vocab"]:
        raise ParamsError(f"{vid}: a neural variant needs a vocabulary: set studies.{variant['study']}.vocab")
    if variant["vocab"] not in params["vocabs"]:
        raise ParamsError(f"{vid}: vocab: unknown vocab {variant['vocab']!r}; allowed: {sorted(params['vocabs'])}")
    emb = model.get("embedding", {})
    source = emb.get("source", "random")
    if source != "random":
        if source not in params["embeddings"]:
            allowed = ["random", *sorted(params["embeddings"])]
            raise ParamsError(f"{vid}: model.embedding.source: unknown embedding {source!r}; allowed: {allowed}")
        file_dim = params["embeddings"][source]["dim"]
        if emb.get("dim") != file_dim:
            raise ParamsError(
                f"{vid}: model.embedding.dim is {emb.get('dim')} but embeddings.{source}.dim is {file_dim}; "
                "set them equal"
            )


def embedding_name(variant: Mapping[str, Any]) -> str | None:
    """The `embeddings` entry a variant needs, or None for random init / baselines."""
    if variant["model"]["type"] != "rnn":
        return None
    source = variant["model"].get("embedding", {}).get("source", "random")
    return None if source == "random" else source
