"""Training of neural variants: batching, optimizers, device handling, the loop, the trainer.

`train_variant` is the entry point (workflow/scripts/train.py dispatches rnn variants to it and
tfidf_logreg variants to `textclf.baseline.train_tfidf`).
"""

from textclf.training.trainer import load_run_data, train_variant

__all__ = ["load_run_data", "train_variant"]
