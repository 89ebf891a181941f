"""textclf: reproducible neural text-classification pipeline (library behind the stage scripts)."""

from textclf.isa import pin as _pin_instruction_set

_pin_instruction_set()  # before any module of the package loads torch or numpy: see textclf/isa.py

__version__ = "0.1.0"
