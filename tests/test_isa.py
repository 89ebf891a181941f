"""The numerical kernels' instruction set: pinned to AVX2 before torch or numpy load, never over
a value the machine sets, named in every run's provenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from textclf import isa

needs_avx2 = pytest.mark.skipif(not isa.cpu_has_avx2(), reason="the pins apply to x86-64 CPUs with AVX2")


@needs_avx2
def test_pin_sets_both_kernels_to_avx2_and_keeps_what_the_machine_sets():
    env: dict[str, str] = {}
    isa.pin(env)
    assert env == {"ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"}
    assert isa.instruction_set(env) == "avx2"
    preset = {"OPENBLAS_CORETYPE": "Prescott"}  # e.g. a machine whose OpenBLAS needs it
    isa.pin(preset)
    assert preset["OPENBLAS_CORETYPE"] == "Prescott" and preset["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert isa.instruction_set(preset) == "onednn=AVX2,openblas=Prescott"


def test_native_switch_pins_nothing_and_is_labelled():
    env = {isa.NATIVE_ENV: "1"}
    isa.pin(env)
    assert env == {isa.NATIVE_ENV: "1"}
    level = isa.cpu_level()
    assert isa.instruction_set(env) == f"onednn=native-{level},openblas=native-{level}" != isa.PINNED


@needs_avx2
def test_importing_textclf_pins_before_numpy_loads_its_blas():
    """A stage process: the package import comes first, then numpy's OpenBLAS starts with the
    Haswell (AVX2) kernels whatever this CPU is; the native switch leaves OpenBLAS its own."""
    code = ("import textclf, os, json, numpy; from threadpoolctl import threadpool_info; "
            "print(json.dumps([os.environ.get('ONEDNN_MAX_CPU_ISA'), "
            "[i.get('architecture') for i in threadpool_info() if i['internal_api'] == 'openblas']]))")
    env = {k: v for k, v in os.environ.items() if k not in (*isa.PINS, isa.NATIVE_ENV)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    onednn, blas = json.loads(out.stdout)
    assert onednn == "AVX2" and set(blas) == {"Haswell"}
    native = subprocess.run([sys.executable, "-c", code], env={**env, isa.NATIVE_ENV: "1"},
                            capture_output=True, text=True, check=True)
    assert json.loads(native.stdout)[0] is None
