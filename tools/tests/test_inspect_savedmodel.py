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

import pytest

from checkpoints import FIXTURE_CHECKPOINTS, REPO
from conftest import COMPACT_ARGS, tf_python

FRONTEND_FIXTURES = REPO / "Tests" / "AVMAETests" / "Fixtures" / "frontend"
BUILDER = REPO / "tools" / "tests" / "build_frontend_savedmodel.py"
INSPECTOR = REPO / "tools" / "inspect_savedmodel.py"
KEYS = ("sample_rate", "frame_length", "frame_step", "fft_length", "window", "pad_end", "spectrum", "mel_bins",
        "lower_hz", "upper_hz", "log_offset", "mean", "std")


TF_PYTHON = tf_python()
pytestmark = pytest.mark.skipif(TF_PYTHON is None, reason="TensorFlow is not importable (no AVMAE_TF_PYTHON, "
                                "no .venv-tf): run tools/setup_tf_venv.sh to enable the SavedModel inspector tests")


def frontend(name: str, **overrides) -> dict:
    params = json.loads((FRONTEND_FIXTURES / f"frontend-{name}.json").read_text())
    return {k: params[k] for k in KEYS} | overrides


CASES = {
    # hamming, magnitude, 125-7500 Hz, 1e-3, mel matrix as a variable
    "default": (frontend("default"), {"mel_variable": True}),
    # hann, power, 0-8000 Hz, 1e-6, mel matrix computed in the graph
    "alt": (frontend("alt"), {}),
    # AudioSet finetuned normalisation baked into the graph
    "audioset-finetuned": (frontend("default", mean=1.102, std=2.762), {}),
    "no-padding-64-bins": (frontend("alt", frame_step=100, pad_end=False, fft_length=1024, mel_bins=64,
                                    lower_hz=60.0, upper_hz=7800.0), {"mel_variable": True}),
    "symmetric-window": (frontend("default"), {"symmetric_window": True}),
    "for-converter": (frontend("alt", mean=0.5, std=2.0), {}),
}


@pytest.fixture(scope="module")
def savedmodels(tmp_path_factory) -> dict:
    """Every case's SavedModel, built by one TensorFlow process."""
    folder = tmp_path_factory.mktemp("savedmodels")
    jobs = [{"frontend": params, "out": str(folder / name), **flags} for name, (params, flags) in CASES.items()]
    (folder / "jobs.json").write_text(json.dumps(jobs))
    result = subprocess.run([TF_PYTHON, str(BUILDER), str(folder / "jobs.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return {name: folder / name for name in CASES}


def inspect(savedmodel) -> subprocess.CompletedProcess:
    return subprocess.run([TF_PYTHON, str(INSPECTOR), str(savedmodel), "--out", "-"], capture_output=True, text=True)


@pytest.mark.parametrize("case", ["default", "alt", "audioset-finetuned", "no-padding-64-bins"])
def test_reads_the_frontend_it_was_built_with(savedmodels, case):
    result = inspect(savedmodels[case])
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == CASES[case][0]


def test_refuses_a_symmetric_window(savedmodels):
    result = inspect(savedmodels["symmetric-window"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("inspect_savedmodel: error: the window is a symmetric hamming; "
                                                      "the bundle frontend uses periodic windows")


def test_converter_takes_the_frontend_from_a_zipped_savedmodel(tmp_path, savedmodels):
    """As the zoo ships it: tf_saved_model.zip with the SavedModel in a folder."""
    folder = savedmodels["for-converter"]
    savedmodel = shutil.make_archive(str(tmp_path / "tf_saved_model"), "zip", folder.parent, folder.name)
    env_python = {**os.environ, "AVMAE_TF_PYTHON": TF_PYTHON}
    result = subprocess.run([sys.executable, str(REPO / "tools" / "convert_checkpoint.py"),
                             str(FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack"), "--out", str(tmp_path / "b"),
                             *COMPACT_ARGS, "--placeholder-labels", "--frontend-from-savedmodel", savedmodel],
                            capture_output=True, text=True, env=env_python)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["frontend"] == CASES["for-converter"][0]
