"""Shared fixtures for the tool tests: converter runs as a subprocess (exit codes and stderr are the contract)."""
from __future__ import annotations

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
