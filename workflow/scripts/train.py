"""Train stage: train one variant and write its results folder.

    train.py --params P --variant D/S/N [--quick | --no-quick] --prepared data/prepared/D
             [--encoded data/encoded/D/V] [--vocab-file data/vocab/D/V.json]
             [--embedding data/embeddings/D/V/E.npy] --out results/D/S/N

Dispatches on model.type: `rnn` → textclf.training.train_variant (model.pt, history.csv,
metrics.json, predictions.parquet; resumes from <out>/checkpoint.pt after an interruption),
`tfidf_logreg` → textclf.baseline.train_tfidf (model.pkl instead of model.pt).
--variant-json FILE takes a resolved variant from a JSON file instead of params.yaml (testing).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from textclf.config import ParamsError, load_params
from textclf.stage import run_stage, stage_parser


def _variant(args: argparse.Namespace) -> dict:
    if args.variant_json:
        variant = json.loads(Path(args.variant_json).read_text(encoding="utf-8"))
        if args.variant and variant.get("id") != args.variant:
            raise ParamsError(f"--variant {args.variant!r} differs from the id in {args.variant_json} ({variant.get('id')!r})")
        if not isinstance(variant.get("model"), dict) or not isinstance(variant.get("training"), dict):
            raise ParamsError(f"{args.variant_json}: a resolved variant needs 'model' and 'training' mappings")
        if variant.get("quick"):
            from textclf.studies import apply_quick

            variant["training"] = apply_quick(variant["training"], variant["quick"])
        return variant
    if not args.variant:
        raise ParamsError("give --variant D/S/N (or --variant-json FILE)")
    from textclf.studies import variant_by_id

    return variant_by_id(load_params(args.params), args.variant, quick=args.quick)


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--variant", help="variant id <dataset>/<study>/<name>")
    parser.add_argument("--variant-json", help="a resolved variant as JSON (instead of params + --variant)")
    parser.add_argument("--quick", action=argparse.BooleanOptionalAction, default=None,
                        help="cap epochs/rows with the `quick` settings (default: run.quick)")
    parser.add_argument("--prepared", required=True, help="data/prepared/D (stats.json; text for tfidf)")
    parser.add_argument("--encoded", help="data/encoded/D/V (rnn variants)")
    parser.add_argument("--vocab-file", help="data/vocab/D/V.json: sizes the embedding table, records its sha256")
    parser.add_argument("--embedding", help="embedding matrix .npy (when model.embedding.source is not random)")
    parser.add_argument("--out", required=True, help="results/D/S/N")
    args = parser.parse_args(argv)
    variant = _variant(args)
    if variant["model"].get("type") == "tfidf_logreg":
        from textclf.baseline import train_tfidf

        metrics = train_tfidf(variant, prepared_dir=args.prepared, out_dir=args.out)
    else:
        if not args.encoded:
            raise ParamsError(f"{variant['id']}: model type {variant['model']['type']!r} needs --encoded")
        from textclf.training import train_variant

        metrics = train_variant(variant, prepared_dir=args.prepared, encoded_dir=args.encoded, out_dir=args.out,
                                embedding_path=args.embedding, vocab_file=args.vocab_file)
    print(f"{variant['id']}: test accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
          f"{metrics['epochs_run']} epoch(s), {metrics['seconds_per_epoch']:.1f} s/epoch"
          + (" [never learned]" if metrics["never_learned"] else "") + f" -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
