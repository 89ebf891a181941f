"""textclf: reproducible neural text-classification pipeline (library behind the stage scripts)."""

__version__ = "0.1.0"
