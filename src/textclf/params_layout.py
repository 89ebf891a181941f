"""Undo DVC's re-layout of params.yaml after `dvc exp run -S key=value`.

DVC applies `-S` by loading params.yaml with ruamel, merging the new values and dumping the
whole file again: one value turned into hundreds of changed lines (flow lists made block lists,
long lines and descriptions re-wrapped, `null` emptied). The `jobs` stage, which DVC runs
first whenever params.yaml changed, calls `restore_layout`: when the file is exactly DVC's
rewrite of the committed one, it is replaced by the committed text with only the changed
values edited in place, so `git diff` shows one line per `-S`. A file edited by hand is never
touched (it is not DVC's rewrite), nor one whose change cannot be written in place.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import yaml

from textclf import atomic


def restore_layout(path: Path) -> bool:
    """Rewrite `path` as the committed text plus in-place value edits, when DVC's `-S` dumped it.
    True when the file was rewritten."""
    current = path.read_text(encoding="utf-8")
    committed = _committed_text(path)
    if committed is None or committed == current:
        return False
    # DVC's dump is a fixed point of DVC's own load+dump; the committed layout (and a hand edit
    # of it) is not: a file that is, while the committed one is not, was written by DVC
    if _dvc_roundtrip(current) != current or _dvc_roundtrip(committed) == committed:
        return False
    edited = edit_in_place(committed, _dvc_load(current))
    if edited is None:
        return False
    atomic.write_text(path, edited)
    return True


def edit_in_place(text: str, new_data: Any) -> str | None:
    """`text` with each value that differs from `new_data` replaced where it stands (a scalar,
    or a flow-style list or mapping, written in flow style); None when a change cannot be made
    that way (a block-style collection changed, a key added or removed)."""
    edits: list[tuple[int, int, str]] = []
    if not _collect_edits(yaml.compose(text), new_data, edits):
        return None
    out = text
    for start, end, value in sorted(edits, reverse=True):
        out = out[:start] + value + out[end:]
    return out if _dvc_load(out) == new_data else None


def _collect_edits(node: yaml.Node, new: Any, edits: list[tuple[int, int, str]]) -> bool:
    old = yaml.safe_load(yaml.serialize(node))
    if old == new and type(old) is type(new):
        return True
    if isinstance(node, yaml.MappingNode) and isinstance(new, dict):
        keys = [yaml.safe_load(yaml.serialize(k)) for k, _ in node.value]
        if sorted(map(str, keys)) == sorted(map(str, new)):
            return all(_collect_edits(v, new[k], edits) for k, (_, v) in zip(keys, node.value, strict=True))
    if isinstance(node, yaml.SequenceNode) and isinstance(new, list) and len(new) == len(node.value):
        return all(_collect_edits(v, item, edits) for v, item in zip(node.value, new, strict=True))
    if isinstance(node, yaml.ScalarNode) and node.style in (None, "'", '"') or \
            isinstance(node, yaml.SequenceNode | yaml.MappingNode) and node.flow_style:
        edits.append((node.start_mark.index, node.end_mark.index, _flow(new)))
        return True
    return False  # a block-style collection whose keys or length changed


def _flow(value: Any) -> str:
    """One value in flow style on one line; a float keeps a dot in its mantissa (1.0e-7), as
    params.yaml asks, since PyYAML reads 1e-07 as a string."""
    if isinstance(value, float) and math.isfinite(value) and "e" in repr(value):
        mantissa, exponent = repr(value).split("e")
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{int(exponent):+d}"
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        value = _plain(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True,
                          sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _plain(value: Any) -> Any:
    """ruamel's dict, list, str and float subclasses as the plain types PyYAML can dump."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _dvc_load(text: str) -> Any:
    """The data as DVC reads it (ruamel, YAML 1.2), as plain types."""
    from dvc.utils.serialize import parse_yaml_for_update

    return _plain(parse_yaml_for_update(text, "params.yaml"))


def _dvc_roundtrip(text: str) -> str:
    """The text after DVC's load and dump, nothing changed."""
    from dvc.utils.serialize import dumps_yaml, parse_yaml_for_update

    return dumps_yaml(parse_yaml_for_update(text, "params.yaml"))


def _committed_text(path: Path) -> str | None:
    """The file as the current commit has it (None outside git, or when it is not committed)."""
    try:
        rel = path.resolve().relative_to(_git_root(path))
        done = subprocess.run(["git", "show", f"HEAD:{rel.as_posix()}"], cwd=path.parent,
                              capture_output=True, text=True, check=False)
    except (OSError, ValueError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_root(path: Path) -> Path:
    done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent, capture_output=True,
                          text=True, check=True)
    return Path(done.stdout.strip()).resolve()
