"""Pin the instruction set of the numerical kernels, so runs compute the same bits on more
x86-64 CPUs.

oneDNN (torch's recurrent layers) and OpenBLAS (numpy, scipy: TF-IDF, word2vec) pick their
kernels from the CPU they run on; AVX-512 kernels round differently from AVX2 ones. Measured:
on an AVX-512 EPYC, the smoke LSTM gave 0.829 against 0.760 on an AVX2 EPYC, and bit-identical
results once oneDNN was capped at AVX2; on an AVX-512 Xeon, TF-IDF and word2vec are bit-identical
to the AVX2 EPYC's under the OpenBLAS pin, while recurrent models still differ in their last bits
(other vendor: oneDNN's kernels adapt to more than the instruction set). So every textclf
process asks for AVX2 kernels (`ONEDNN_MAX_CPU_ISA=AVX2`, `OPENBLAS_CORETYPE=Haswell`) before
torch or numpy load: importing the package does it. A value the machine's environment already
sets is kept (some machines set OPENBLAS_CORETYPE because older OpenBLAS builds compute wrong
results on their processors); `TEXTCLF_NATIVE_ISA=1` uses the CPU's own kernels, for speed.
`instruction_set()` names what is in effect; it is part of a run's provenance and of the key a
published run is reused by, so a run is reused only where this machine computes it bit for bit.
"""

from __future__ import annotations

import os
import platform

NATIVE_ENV = "TEXTCLF_NATIVE_ISA"
PINS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"}
PINNED = "avx2"  # the label of runs made with exactly PINS in effect


def native_requested(env: dict[str, str]) -> bool:
    """TEXTCLF_NATIVE_ISA=1 (or true, yes): the CPU's own kernels, for speed."""
    return env.get(NATIVE_ENV, "").strip().lower() in ("1", "true", "yes")


def cpu_level() -> str:
    """The widest vector extension this CPU has: avx512, avx2, or other (not x86-64, or older)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "other"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "other"
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"


def cpu_has_avx2() -> bool:
    """AVX2 kernels need an x86-64 CPU that has them."""
    return cpu_level() in ("avx2", "avx512")


def pin(environ: dict[str, str] | None = None) -> None:
    """Set the AVX2 pins where the environment does not set them already (never overridden);
    nothing with TEXTCLF_NATIVE_ISA=1 or on a CPU without AVX2."""
    env = os.environ if environ is None else environ
    if native_requested(env) or not cpu_has_avx2():
        return
    for name, value in PINS.items():
        env.setdefault(name, value)


def instruction_set(environ: dict[str, str] | None = None) -> str:
    """`avx2` when exactly the pins are in effect; otherwise what is, e.g.
    `onednn=native-avx512,openblas=native-avx512` (TEXTCLF_NATIVE_ISA=1 on an AVX-512 CPU) or
    `onednn=AVX2,openblas=Prescott` (a machine's own OPENBLAS_CORETYPE): never equal to `avx2`,
    so such a run is never reused as a pinned one, nor a pinned one for it."""
    env = os.environ if environ is None else environ
    values = {name: env.get(name, "").strip() for name in PINS}
    if all(values[name].lower() == value.lower() for name, value in PINS.items()):
        return PINNED
    onednn, openblas = (values[name] or f"native-{cpu_level()}" for name in PINS)
    return f"onednn={onednn},openblas={openblas}"
