"""inspect_savedmodel.py on SavedModels built with tf.signal and known frontend parameters.

TensorFlow is not a dependency of the converter venv: these tests run the TF venv's python as a subprocess
(AVMAE_TF_PYTHON, else .venv-tf/bin/python from tools/setup_tf_venv.sh, else this python) and are skipped,
with the reason printed, when none of them can import TensorFlow.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checkpoints import FIXTURE_CHECKPOINTS, REPO
from conftest import COMPACT_ARGS

FRONTEND_FIXTURES = REPO / "Tests" / "AVMAETests" / "Fixtures" / "frontend"
BUILDER = REPO / "tools" / "tests" / "build_frontend_savedmodel.py"
INSPECTOR = REPO / "tools" / "inspect_savedmodel.py"
KEYS = ("sample_rate", "frame_length", "frame_step", "fft_length", "window", "pad_end", "spectrum", "mel_bins",
        "lower_hz", "upper_hz", "log_offset", "mean", "std")


def tf_python() -> str | None:
    candidates = [os.environ.get("AVMAE_TF_PYTHON"), str(REPO / ".venv-tf" / "bin" / "python"), sys.executable]
    for python in filter(None, candidates):
        if os.path.exists(python) and subprocess.run([python, "-c", "import tensorflow"],
                                                     capture_output=True).returncode == 0:
            return python
    return None


TF_PYTHON = tf_python()
pytestmark = pytest.mark.skipif(TF_PYTHON is None, reason="TensorFlow is not importable (no AVMAE_TF_PYTHON, "
                                "no .venv-tf): run tools/setup_tf_venv.sh to enable the SavedModel inspector tests")


def frontend_case(tmp_path, name: str, **overrides) -> tuple[dict, str]:
    params = json.loads((FRONTEND_FIXTURES / f"frontend-{name}.json").read_text())
    params.update(overrides)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(params))
    return params, str(path)


def build(tmp_path, params_path: str, *flags) -> str:
    out = str(tmp_path / "savedmodel")
    result = subprocess.run([TF_PYTHON, str(BUILDER), params_path, out, *flags], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def inspect(savedmodel: str) -> subprocess.CompletedProcess:
    return subprocess.run([TF_PYTHON, str(INSPECTOR), savedmodel, "--out", "-"], capture_output=True, text=True)


@pytest.mark.parametrize("case,overrides,flags", [
    ("default", {}, ["--mel-variable"]),                        # hamming, magnitude, 125-7500 Hz, mel as a variable
    ("alt", {}, []),                                           # hann, power, 0-8000 Hz, 1e-6, mel computed in-graph
    ("default", {"mean": 1.102, "std": 2.762}, []),            # AudioSet finetuned normalisation baked in
    ("alt", {"frame_step": 100, "pad_end": False, "fft_length": 1024, "mel_bins": 64, "lower_hz": 60.0,
             "upper_hz": 7800.0}, ["--mel-variable"]),
])
def test_reads_the_frontend_it_was_built_with(tmp_path, case, overrides, flags):
    params, path = frontend_case(tmp_path, case, **overrides)
    result = inspect(build(tmp_path, path, *flags))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {k: params[k] for k in KEYS}


def test_refuses_a_symmetric_window(tmp_path):
    _, path = frontend_case(tmp_path, "default")
    result = inspect(build(tmp_path, path, "--symmetric-window"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("inspect_savedmodel: error: the window is a symmetric hamming; "
                                                      "the bundle frontend uses periodic windows")


def test_converter_takes_the_frontend_from_a_zipped_savedmodel(tmp_path):
    """As the zoo ships it: tf_saved_model.zip with the SavedModel in a folder."""
    params, path = frontend_case(tmp_path, "alt", mean=0.5, std=2.0)
    savedmodel = shutil.make_archive(str(tmp_path / "tf_saved_model"), "zip", tmp_path, Path(build(tmp_path, path)).name)
    env_python = {**os.environ, "AVMAE_TF_PYTHON": TF_PYTHON}
    result = subprocess.run([sys.executable, str(REPO / "tools" / "convert_checkpoint.py"),
                             str(FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack"), "--out", str(tmp_path / "b"),
                             *COMPACT_ARGS, "--placeholder-labels", "--frontend-from-savedmodel", savedmodel],
                            capture_output=True, text=True, env=env_python)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["frontend"] == {k: params[k] for k in KEYS}
