"""The Open Inference Protocol (/v2) against a client nobody here wrote: tritonclient[http] (PyPI), Triton's own
Python client, talking to the real daemon. It checks liveness, readiness and metadata, then infers on a CLIP sent
as binary data (one file, and a batch of three) and on a WAVEFORM tensor; all must give /v1's answers for the
same files.
Run: AVMAE_SERVE_BIN=.build/release/avmae-serve python3 -m pytest -q Tests/contract/test_v2_tritonclient.py
"""
import json
import tempfile
import wave

import numpy as np
import pytest
import tritonclient.http as httpclient

from test_contract import FIXTURES, request, start_daemon, wait_ready

MODEL = "avmae-demo"
TONE = FIXTURES / "tone.wav"


@pytest.fixture(scope="module")
def port():
    with tempfile.TemporaryDirectory() as scratch:
        proc, port = start_daemon(scratch, {})
        try:
            wait_ready(port)
            yield port
        finally:
            proc.terminate()
            assert proc.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def client(port):
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{port}", network_timeout=120)


def v1(port, path):
    status, _, body = request(port, "POST", path, TONE.read_bytes(), {"Content-Type": "audio/wav"})
    assert status == 200, body
    return json.loads(body)


def v1_scores(port):
    """/v1/classify's score for every class of the tone, by class index."""
    scores = np.full(527, np.nan, dtype=np.float32)
    for label in v1(port, "/v1/classify?top_k=527")["labels"]:
        scores[label["index"]] = label["score"]
    return scores


def tone_waveform():
    """tone.wav is 16 kHz mono 16-bit PCM, one model window long: the decoder's waveform is its samples / 32768."""
    with wave.open(str(TONE)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return (samples.astype(np.float32) / 32768.0)[np.newaxis, :]


def test_server_live_and_model_ready(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("no-such-model")


def test_model_metadata(client):
    metadata = client.get_model_metadata(MODEL)
    assert metadata["name"] == MODEL
    inputs = {tensor["name"]: (tensor["datatype"], tensor["shape"]) for tensor in metadata["inputs"]}
    assert inputs["CLIP"] == ("BYTES", [-1])
    assert inputs["WAVEFORM"] == ("FP32", [-1, 160000])
    assert inputs["FRAMES"] == ("UINT8", [-1, 32, 224, 224, 3])
    outputs = {tensor["name"]: (tensor["datatype"], tensor["shape"]) for tensor in metadata["outputs"]}
    assert outputs["PROBABILITIES"] == ("FP32", [-1, 527])
    assert outputs["AUDIO_EMBEDDING"] == ("FP32", [-1, 64])


def test_clip_as_binary_data_equals_v1(client, port):
    clip = httpclient.InferInput("CLIP", [1], "BYTES")
    clip.set_data_from_numpy(np.array([TONE.read_bytes()], dtype=np.object_), binary_data=True)
    # No outputs named: every output comes back, as binary data (tritonclient's default).
    result = client.infer(MODEL, [clip])
    probabilities = result.as_numpy("PROBABILITIES")
    assert probabilities.shape == (1, 527)
    np.testing.assert_allclose(probabilities[0], v1_scores(port), rtol=1e-5, atol=1e-6)
    embedding = result.as_numpy("AUDIO_EMBEDDING")
    np.testing.assert_allclose(embedding[0], v1(port, "/v1/embed")["embeddings"]["audio"], rtol=1e-5, atol=1e-6)
    assert result.as_numpy("LOGITS").shape == (1, 527)


def test_a_batch_of_clips_equals_v1_row_by_row(client, port):
    """CLIP [B]: B files in one request, each answered as /v1 answers it, rows in order."""
    files = [TONE, FIXTURES / "long.flac", TONE]
    clip = httpclient.InferInput("CLIP", [len(files)], "BYTES")
    clip.set_data_from_numpy(np.array([f.read_bytes() for f in files], dtype=np.object_), binary_data=True)
    result = client.infer(MODEL, [clip], outputs=[httpclient.InferRequestedOutput("PROBABILITIES"),
                                                  httpclient.InferRequestedOutput("AUDIO_EMBEDDING")])
    probabilities = result.as_numpy("PROBABILITIES")
    assert probabilities.shape == (3, 527)
    for row, file in enumerate(files):
        status, _, body = request(port, "POST", "/v1/classify?top_k=527", file.read_bytes(),
                                  {"Content-Type": "application/octet-stream"})
        assert status == 200, body
        expected = np.full(527, np.nan, dtype=np.float32)
        for label in json.loads(body)["labels"]:
            expected[label["index"]] = label["score"]
        np.testing.assert_allclose(probabilities[row], expected, rtol=1e-5, atol=1e-6, err_msg=f"row {row}: {file.name}")
    assert result.as_numpy("AUDIO_EMBEDDING").shape == (3, 64)
    assert not np.allclose(probabilities[0], probabilities[1]), "two different files gave the same row"


def test_waveform_tensor_equals_v1(client, port):
    waveform = httpclient.InferInput("WAVEFORM", [1, 160000], "FP32")
    waveform.set_data_from_numpy(tone_waveform(), binary_data=True)
    outputs = [httpclient.InferRequestedOutput("PROBABILITIES", binary_data=True),
               httpclient.InferRequestedOutput("LOGITS", class_count=3)]
    result = client.infer(MODEL, [waveform], outputs=outputs, timeout=30_000_000)
    scores = v1_scores(port)
    np.testing.assert_allclose(result.as_numpy("PROBABILITIES")[0], scores, rtol=1e-5, atol=1e-6)
    top = [entry.decode().split(":") for entry in result.as_numpy("LOGITS")[0]]
    expected = sorted(range(527), key=lambda i: (-scores[i], i))[:3]
    assert [int(index) for _, index, _ in top] == expected
    assert top[0][2] == "demo class %03d (meaningless)" % expected[0]


def test_waveform_as_json_data_equals_binary(client, port):
    waveform = httpclient.InferInput("WAVEFORM", [1, 160000], "FP32")
    waveform.set_data_from_numpy(tone_waveform(), binary_data=False)
    result = client.infer(MODEL, [waveform], outputs=[httpclient.InferRequestedOutput("PROBABILITIES", binary_data=False)])
    np.testing.assert_allclose(result.as_numpy("PROBABILITIES")[0], v1_scores(port), rtol=1e-5, atol=1e-6)


def test_bad_input_is_a_protocol_error(client):
    waveform = httpclient.InferInput("WAVEFORM", [1, 1000], "FP32")
    waveform.set_data_from_numpy(np.zeros((1, 1000), dtype=np.float32))
    with pytest.raises(httpclient.InferenceServerException) as raised:
        client.infer(MODEL, [waveform])
    assert raised.value.status() == "400"
    assert "shape" in raised.value.message()
