"""`avmae-serve models list` and `models fetch` against a loopback HTTP server holding compact checkpoints.

The server (127.0.0.1 only, in a thread) lays the fixtures out like the model zoo (<dir>/checkpoint), honours
HTTP Range like Google Cloud Storage does, and records each request's Range header, so the test can check that an
interrupted download resumes instead of restarting. Skipped, with the reason, when AVMAE_SERVE_BIN is unset or
the binary has no `models` command yet.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from safetensors.numpy import load_file

from checkpoints import FIXTURE_CHECKPOINTS, GOLDEN_PARAMS, REPO

BIN = os.environ.get("AVMAE_SERVE_BIN")


def binary_has_models_command() -> bool:
    return bool(BIN) and subprocess.run([BIN, "models", "--help"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not binary_has_models_command(), reason=(
    "AVMAE_SERVE_BIN is not set" if not BIN else f"{BIN} has no `models` subcommand (register Models in main.swift)")
    + ": the `models list/fetch` tests did not run")

CATALOG = json.loads((REPO / "models" / "catalog.json").read_text())
SERVED = {  # catalog name -> compact fixture standing in for the real checkpoint
    "audioset-av-pretrained": "pretrain",
    "audioset-av-finetuned-audio": "ft_a",
}


class RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    ranges: list[str | None] = []

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.ranges.append(self.headers.get("Range"))
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def zoo():
    entries = {m["name"]: m for m in CATALOG["models"]}
    RangeHandler.files = {f"/{entries[n]['dir']}/checkpoint": (FIXTURE_CHECKPOINTS / f"{f}.flax.msgpack").read_bytes()
                          for n, f in SERVED.items()}
    RangeHandler.ranges = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", entries
    server.shutdown()
    thread.join()


def fetch(base_url: str, folder, name: str, *extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "AVMAE_CATALOG": str(REPO / "models" / "catalog.json"), "AVMAE_PYTHON": sys.executable}
    return subprocess.run([BIN, "models", "fetch", name, "--dir", str(folder), "--base-url", base_url, *extra],
                          capture_output=True, text=True, env=env)


def test_list_prints_every_catalog_entry():
    result = subprocess.run([BIN, "models", "list", "--catalog", str(REPO / "models" / "catalog.json")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["NAME", "KIND", "DATASET"]
    assert [line.split()[0] for line in lines[1:]] == [m["name"] for m in CATALOG["models"]]
    assert "51.8% mAP" in next(line for line in lines if line.startswith("audioset-av-finetuned-av "))


def test_fetch_resumes_converts_and_verifies(tmp_path, zoo):
    base_url, entries = zoo
    name = "audioset-av-finetuned-audio"
    body = (FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack").read_bytes()
    (tmp_path / f"{name}.checkpoint.part").write_bytes(body[:50_000])  # an interrupted earlier download
    labels = tmp_path / "labels.csv"
    labels.write_text("index,mid,display_name\n" + "".join(f"{i},/m/{i:04d},label {i}\n" for i in range(527)))
    result = fetch(base_url, tmp_path, name, "--labels", str(labels))
    assert result.returncode == 0, result.stderr
    assert RangeHandler.ranges == ["bytes=50000-"]
    assert "resuming after 50000 bytes" in result.stderr and "verified" in result.stderr
    bundle = tmp_path / name
    config = json.loads((bundle / "config.json").read_text())
    assert (config["name"], config["kind"], config["modalities"], config["num_classes"]) == \
        (name, "finetuned", ["audio"], 527)
    assert (bundle / "labels.csv").read_text().splitlines()[1] == "0,/m/0000,label 0"
    golden = load_file(str(GOLDEN_PARAMS))
    ours = load_file(str(bundle / "model.safetensors"))
    assert sorted(ours) == sorted(k[len("ft_a/"):] for k in golden if k.startswith("ft_a/"))
    assert all(np.array_equal(v, golden["ft_a/" + k]) for k, v in ours.items())
    assert not (tmp_path / f"{name}.checkpoint").exists() and not (tmp_path / f"{name}.checkpoint.part").exists()


def test_fetch_pretrained_needs_no_labels(tmp_path, zoo):
    base_url, _ = zoo
    result = fetch(base_url, tmp_path, "audioset-av-pretrained", "--keep-checkpoint")
    assert result.returncode == 0, result.stderr
    assert RangeHandler.ranges == [None]
    assert json.loads((tmp_path / "audioset-av-pretrained" / "config.json").read_text())["encoder"] == "mid_fusion"
    assert (tmp_path / "audioset-av-pretrained.checkpoint").read_bytes() == \
        (FIXTURE_CHECKPOINTS / "pretrain.flax.msgpack").read_bytes()


def test_fetch_refuses_unknown_names_and_missing_labels(tmp_path, zoo):
    base_url, _ = zoo
    result = fetch(base_url, tmp_path, "no-such-model")
    assert result.returncode != 0 and "no model no-such-model in the catalog" in result.stderr
    RangeHandler.files["/vggsound/vggsound_selfsup_audiovisual_finetuned_audio/checkpoint"] = \
        (FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack").read_bytes()
    result = fetch(base_url, tmp_path, "vggsound-av-finetuned-audio")
    assert result.returncode != 0 and "needs a label list" in result.stderr
