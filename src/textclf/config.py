"""Load and validate params.yaml: one place that turns a bad parameter into a clear message.

The JSON schema (workflow/schemas/params.schema.yaml) checks names and types; the checks
below add what a schema cannot say (a study naming a dataset that does not exist, a dataset
naming a download that does not exist, ...). Every message names the offending key and, where
there is a closed set, the allowed values.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"
DEFAULT_PARAMS = "params.yaml"


class ParamsError(ValueError):
    """params.yaml (or a value derived from it) is invalid. The message says where and why."""


@functools.cache
def load_schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.first, self.again = key, first, again


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load keeps the last of two equal keys without a word (a second `training:`
    under a study silently replaced the first); this loader refuses them."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` keys may be overridden: that is what a merge is for
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
            if first is not key_node.start_mark:
                raise _DuplicateKey(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read and fully validate a params file. Raises ParamsError with every problem found."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            params = yaml.load(fh, Loader=UniqueKeyLoader)
    except _DuplicateKey as exc:
        raise ParamsError(f"{path}:{exc.again.line + 1}: duplicate key {exc.key!r} (first at line "
                          f"{exc.first.line + 1}, column {exc.first.column + 1}); YAML would keep only "
                          "the second: merge the two into one") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        # an unclosed bracket or quote is found only at the end of the file: name where it opened
        context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        start = f"; {context} at line {opened.line + 1}, column {opened.column + 1}" if context and opened else ""
        raise ParamsError(f"{where}: not valid YAML ({problem}{start}); fix that line") from None
    validate_params(params, source=str(path))
    return params


def validate_params(params: Any, *, source: str = "params") -> None:
    """Schema + cross-reference checks; raise ParamsError listing every problem."""
    if not isinstance(params, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(params).__name__}")
    problems = schema_problems(params)
    if not problems:
        problems = reference_problems(params)
    if problems:
        listing = "\n  - ".join(problems)
        raise ParamsError(f"{source}: {len(problems)} problem(s):\n  - {listing}")


def schema_problems(params: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
    return [_describe(err) for err in errors]


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(err: jsonschema.ValidationError) -> str:
    """One readable line per schema error: key, what is wrong, what is allowed."""
    where = _dotted(err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    if err.validator == "additionalProperties" and schema.get("additionalProperties") is False:
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        hint = "".join(did_you_mean(str(e), allowed) for e in extra)
        return f"{where}: unknown key(s) {extra}{hint}; allowed keys: {allowed}"
    if err.validator == "enum":
        hint = did_you_mean(str(err.instance), [str(v) for v in err.validator_value])
        return f"{where}: {err.instance!r} is not allowed{hint}; allowed values: {err.validator_value}"
    if err.validator == "const":
        return f"{where}: {err.instance!r} is not allowed; expected {err.validator_value!r}"
    if err.validator == "type":
        return (f"{where}: expected {err.validator_value}, got {err.instance!r} "
                f"({type(err.instance).__name__})")
    if err.validator == "required":
        return f"{where}: {err.message}"
    if err.validator in ("oneOf", "anyOf"):
        # Prefer the most specific sub-error (e.g. the enum or type that failed).
        subs = sorted(err.context or [], key=lambda e: len(list(e.relative_path)), reverse=True)
        hints = {_describe(s) for s in subs if s.validator != "type"} or {_describe(s) for s in subs}
        return f"{where}: {err.instance!r} does not match any allowed form ({'; '.join(sorted(hints))})"
    if err.validator == "pattern":
        return f"{where}: {err.instance!r} does not match pattern {err.validator_value!r}"
    return f"{where}: {err.message}"


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """' (did you mean 'pooling'?)' for a near miss, else ''."""
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)  # 'gur' -> 'gru'
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(kind: str, name: str, allowed: Iterable[str], where: str) -> str:
    return f"{where}: unknown {kind} {name!r}{did_you_mean(name, allowed)}; allowed: {sorted(allowed)}"


def reference_problems(params: Mapping[str, Any]) -> list[str]:
    """Cross-references the schema cannot express."""
    problems: list[str] = []
    downloads = {f"{g}/{f}" for g, files in params["downloads"].items() for f in files}
    for name, ds in params["datasets"].items():
        for role, ref in ds["files"].items():
            if ref not in downloads:
                problems.append(_unknown("download", ref, downloads, f"datasets.{name}.files.{role}"))
        needed = {"ag_news_csv": {"train", "test"}, "aclimdb": {"archive"}}[ds["reader"]]
        missing = needed - set(ds["files"])
        if missing:
            problems.append(f"datasets.{name}.files: reader {ds['reader']!r} needs roles {sorted(needed)}, missing {sorted(missing)}")
        split = ds["split"]
        if split["policy"] == "resplit" and "test_fraction" not in split:
            problems.append(f"datasets.{name}.split: policy 'resplit' needs test_fraction")
        if split["policy"] == "official" and "test_fraction" in split:
            problems.append(f"datasets.{name}.split.test_fraction: only used by policy 'resplit'")
    for name, emb in params["embeddings"].items():
        where = f"embeddings.{name}"
        if emb["type"] == "glove":
            for key in ("archive", "member"):
                if key not in emb:
                    problems.append(f"{where}: type 'glove' needs key {key!r}")
            if emb.get("archive") and emb["archive"] not in downloads:
                problems.append(_unknown("download", emb["archive"], downloads, f"{where}.archive"))
        if emb["type"] == "word2vec_file" and "path" not in emb:
            problems.append(f"{where}: type 'word2vec_file' needs key 'path'")
        named = re.search(r"\.(\d+)d\.txt$", str(emb.get("member", "")))
        if emb["type"] == "glove" and "dim" in emb and named and int(named.group(1)) != emb["dim"]:
            problems.append(f"{where}.dim: {emb['dim']} but member {emb['member']!r} holds "
                            f"{named.group(1)}-dimensional vectors; drop `dim` (it is read from the member name)")
        if embedding_dim(emb) is None:
            problems.append(f"{where}: set 'dim' (it can only be read from a GloVe member name such as "
                            "glove.6B.50d.txt)")
    studies = params["studies"]
    selected = params["run"]["studies"]
    if selected != "all":
        for s in selected:
            if s not in studies:
                problems.append(_unknown("study", s, studies, "run.studies"))
    for sname, study in studies.items():
        where = f"studies.{sname}"
        for ds in study["datasets"]:
            if ds not in params["datasets"]:
                problems.append(_unknown("dataset", ds, params["datasets"], f"{where}.datasets"))
        if study["model"] not in params["models"]:
            problems.append(_unknown("model preset", study["model"], params["models"], f"{where}.model"))
        if "vocab" in study and study["vocab"] not in params["vocabs"]:
            problems.append(_unknown("vocab", study["vocab"], params["vocabs"], f"{where}.vocab"))
    return problems


def embedding_dim(entry: Mapping[str, Any]) -> int | None:
    """An `embeddings` entry's vector width: `dim`, else (GloVe) the member's name, e.g.
    glove.6B.50d.txt -> 50. So pointing glove100 at the 50d member is a single edit."""
    if "dim" in entry:
        return int(entry["dim"])
    match = re.search(r"\.(\d+)d\.txt$", str(entry.get("member", "")))
    return int(match.group(1)) if entry.get("type") == "glove" and match else None


def select_studies(params: Mapping[str, Any], selection: Any = None) -> list[str]:
    """Names of the studies to build: `selection` (a list, e.g. Snakemake --config studies=[..])
    overrides run.studies; "all" means every study in file order."""
    chosen = params["run"]["studies"] if selection is None else selection
    if chosen == "all":
        return list(params["studies"])
    if isinstance(chosen, str):
        chosen = [chosen]
    unknown = [s for s in chosen if s not in params["studies"]]
    if unknown:
        hint = "".join(did_you_mean(str(u), params["studies"]) for u in unknown)
        raise ParamsError(f"studies: unknown study name(s) {unknown}{hint}; allowed: {sorted(params['studies'])}")
    return list(chosen)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; override wins; inputs are not modified."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def get_dotted(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def named_entry(params: Mapping[str, Any], section: str, name: str) -> dict[str, Any]:
    """params[section][name], or a ParamsError listing the names that exist."""
    entries = params.get(section) or {}
    if name not in entries:
        raise ParamsError(f"{section}: unknown name {name!r}{did_you_mean(name, entries)}; allowed: {sorted(entries)}")
    return entries[name]
