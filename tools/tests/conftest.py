"""Shared fixtures for the tool tests: converter runs as a subprocess (exit codes and stderr are the contract)."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkpoints import REPO  # noqa: E402

CONVERTER = REPO / "tools" / "convert_checkpoint.py"
# The compact golden models: 2 layers, width 32, fusion at layer 1, 160 spectrogram frames (1.6 s), 4 video frames.
COMPACT_ARGS = ["--label-set", "audioset", "--fusion-layer", "1", "--clip-seconds", "1.6", "--frames", "4"]


def run_converter(*args, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(CONVERTER), *map(str, args)], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"converter failed ({result.returncode}): {result.stderr}")
    return result


@pytest.fixture
def convert():
    return run_converter


@functools.cache
def tf_python() -> str | None:
    """A python that imports TensorFlow: AVMAE_TF_PYTHON, else .venv-tf (tools/setup_tf_venv.sh), else this one.
    TensorFlow is not in the converter's venv, so the tests run it as a subprocess; asked once per session
    because importing TensorFlow takes seconds."""
    candidates = [os.environ.get("AVMAE_TF_PYTHON"), str(REPO / ".venv-tf" / "bin" / "python"), sys.executable]
    for python in filter(None, candidates):
        if os.path.exists(python) and subprocess.run([python, "-c", "import tensorflow"],
                                                     capture_output=True).returncode == 0:
            return python
    return None
