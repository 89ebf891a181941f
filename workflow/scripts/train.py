"""Train stage: train one replica of a variant and write its results folder.

    train.py jobs/train/<mode>/<dataset>/<study>/<variant>/seed<k>.json

The job file holds the resolved variant (model, training, quick caps, seed) and the paths it
reads. Dispatches on model.type: `rnn` → textclf.training.train_variant (model.pt,
history.csv, metrics.json, predictions.parquet; resumes from <out>/checkpoint.pt after an
interruption), `tfidf_logreg` → textclf.baseline.train_tfidf. A full-setting run published
in reports/runs/ with the same settings, code and inputs is copied instead of trained
(textclf.published; TEXTCLF_REUSE_PUBLISHED=0 trains anyway).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from textclf.config import REPO_ROOT
from textclf.plan import code_files
from textclf.published import (
    clear_provenance,
    git_commit,
    reuse_published,
    run_provenance,
    write_provenance,
)
from textclf.settings import variant_from_dict
from textclf.stage import read_job, run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__.splitlines()[0]).parse_args(argv)
    job = read_job(args.job, "variant", "inputs", "out")
    variant = variant_from_dict(job["variant"], str(args.job))
    inputs, out = job["inputs"], job["out"]
    family = "train" if variant.is_neural else "baseline"
    provenance = run_provenance(args.job, (REPO_ROOT, code_files("train", family, REPO_ROOT)), inputs)
    published = reuse_published(out, provenance)
    if published is not None:
        metrics = json.loads((published / "metrics.json").read_text(encoding="utf-8"))
        print(f"{variant.run_id}: published run reused (same settings, code and inputs; files verified): "
              f"test accuracy {metrics['accuracy']:.4f} -> {out} (from {published}; "
              "TEXTCLF_REUSE_PUBLISHED=0 trains it here instead)")
        return
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    clear_provenance(out)  # outputs of this run are not yet what an earlier provenance describes
    if variant.is_neural:
        from textclf.training import train_variant

        metrics = train_variant(variant, prepared_dir=inputs["prepared"], encoded_dir=inputs["encoded"],
                                out_dir=out, embedding_path=inputs["embedding"], vocab_file=inputs["vocab_file"])
    else:
        from textclf.baseline import train_tfidf

        metrics = train_tfidf(variant, prepared_dir=inputs["prepared"], out_dir=out)
    write_provenance(out, provenance, trained_at=started, commit=git_commit())
    print(f"{variant.run_id}: test accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
          f"{metrics['epochs_run']} epoch(s), {metrics['seconds_per_epoch']:.1f} s/epoch"
          + (" [never learned]" if metrics["never_learned"] else "") + f" -> {out}")


if __name__ == "__main__":
    run_stage(main)
