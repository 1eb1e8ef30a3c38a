"""Contract test: every response the real daemon gives, for every route and documented status, must match
openapi.yaml (status documented for the operation, JSON body valid against its schema, documented headers
present). Run: AVMAE_SERVE_BIN=.build/release/avmae-serve python3 -m pytest -q Tests/contract

Also validates openapi.yaml itself with openapi-spec-validator.
"""
import http.client
import json
import os
import pathlib
import re
import struct
import subprocess
import tempfile
import time

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "openapi.yaml"
FIXTURES = ROOT / "Tests" / "HTTPServerTests" / "Fixtures"
BINARY = os.environ.get("AVMAE_SERVE_BIN", str(ROOT / ".build" / "release" / "avmae-serve"))
MAX_BODY = 1_000_000


@pytest.fixture(scope="module")
def spec():
    document, _ = read_from_filename(str(SPEC_PATH))
    validate(document)
    return document


def start_daemon(scratch, settings):
    bundle = os.path.join(scratch, "bundle")
    subprocess.run([BINARY, "demo-bundle", "--out", bundle], check=True, stdout=subprocess.DEVNULL)
    args = [BINARY, "serve", "--bundle", bundle, "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"]
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
    return proc, port


def wait_ready(port):
    deadline = time.time() + 300
    while time.time() < deadline:
        if request(port, "GET", "/readyz")[0] == 200:
            return
        time.sleep(0.1)
    raise RuntimeError("daemon never became ready")


@pytest.fixture(scope="module")
def daemon():
    with tempfile.TemporaryDirectory() as scratch:
        proc, port = start_daemon(scratch, {"max_body_bytes": MAX_BODY})
        try:
            wait_ready(port)
            yield port
        finally:
            proc.terminate()
            assert proc.wait(timeout=60) == 0


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    if body is None and method == "POST":
        # http.client would add "Content-Length: 0"; send a POST with no length at all (the 411 case).
        conn.putrequest(method, path)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
    else:
        try:
            conn.request(method, path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (413) and closed its read side; its answer is still there
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def check(spec, method, path, status, headers, payload):
    """Asserts that this (method, path) -> (status, headers, body) is what openapi.yaml promises."""
    assert "x-request-id" in headers
    operation = spec["paths"].get(template(spec, path), {}).get(method.lower())
    if operation is None:
        # Unknown routes are outside the paths; they still answer the common error shape.
        assert status in (404, 405)
        schema = spec["components"]["schemas"]["Error"]
    else:
        assert str(status) in operation["responses"], f"{method} {path} -> undocumented {status}"
        response = operation["responses"][str(status)]
        if "$ref" in response:
            response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        error = json.loads(payload).get("error") if status >= 400 else None
        code = error.get("code") if isinstance(error, dict) else None  # /v2 errors are plain strings
        for header in response.get("headers", {}):
            # Retry-After is promised where waiting helps: overload and deadline answers; the OIP header length
            # where binary data follows the JSON.
            binary = headers.get("content-type") == "application/octet-stream"
            if (header.lower() != "retry-after" or code in ("overloaded", "deadline_exceeded")) and \
                    (header.lower() != "inference-header-content-length" or binary):
                assert header.lower() in headers, f"{method} {path} {status}: missing header {header}"
        if "content" not in response:
            assert payload == b"", f"{method} {path} {status}: a body where none is documented"
            return
        media = response["content"]
        content_type = headers["content-type"].split(";")[0]
        assert content_type in media, f"{content_type} not documented for {method} {path} {status}"
        schema = media[content_type]["schema"]
        if content_type != "application/json":
            return
    registry = Registry().with_resource("spec", Resource.from_contents(spec, default_specification=DRAFT4))
    body = json.loads(payload)
    unmatched = "V2Error" if path == "/v2" or path.startswith("/v2/") else "Error"
    OAS30Validator({"$ref": f"spec#/components/schemas/{unmatched}"} if operation is None else
                   _rebase(schema), registry=registry).validate(body)


def template(spec, path):
    """The documented path a concrete one falls under: /v2/models/m/ready -> /v2/models/{model_name}/ready."""
    for candidate in spec["paths"]:
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(candidate)), path):
            return candidate
    return path


def _rebase(schema):
    """Points '#/components/...' references at the registered spec document."""
    if isinstance(schema, dict):
        return {k: ("spec" + v if k == "$ref" and v.startswith("#") else _rebase(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


TONE = (FIXTURES / "tone.wav").read_bytes()
CLIP = (FIXTURES / "clip.mp4").read_bytes()
LONG = (FIXTURES / "long.flac").read_bytes()
WAV = {"Content-Type": "audio/wav"}
INFER = "/v2/models/avmae-demo/infer"


def v2_binary(inputs, outputs=None, parameters=None):
    """An infer body in Triton's binary data framing: JSON header, then each input's bytes."""
    header = {"inputs": [{"name": name, "datatype": datatype, "shape": shape,
                          "parameters": {"binary_data_size": len(data)}} for name, datatype, shape, data in inputs]}
    if outputs is not None:
        header["outputs"] = outputs
    if parameters is not None:
        header["parameters"] = parameters
    head = json.dumps(header).encode()
    body = head + b"".join(data for _, _, _, data in inputs)
    return body, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def clip_input(data):
    return ("CLIP", "BYTES", [1], struct.pack("<I", len(data)) + data)


def multipart(data, name="file"):
    boundary = "contractBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"c\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


CASES = [
    ("GET", "/healthz", None, {}, 200),
    ("HEAD", "/healthz", None, {}, 200),
    ("GET", "/readyz", None, {}, 200),
    ("GET", "/metrics", None, {}, 200),
    ("GET", "/", None, {}, 200),
    ("GET", "/v1/models", None, {}, 200),
    ("POST", "/v1/classify?top_k=3", TONE, WAV, 200),
    ("POST", "/v1/classify?windows=true&aggregate=max&threshold=0.1", LONG, {"Content-Type": "audio/flac"}, 200),
    ("POST", "/v1/classify?crops=4&modality=audiovisual", CLIP, {"Content-Type": "video/mp4"}, 200),
    ("POST", "/v1/classify", *multipart(TONE), 200),
    ("POST", "/v1/embed", TONE, WAV, 200),
    ("POST", "/v1/embed?tokens=true&encoding=base64", CLIP, {"Content-Type": "video/mp4"}, 200),
    ("POST", "/v1/embed?windows=true", LONG, {"Content-Type": "application/octet-stream"}, 200),
    ("POST", "/v1/classify?top_k=0", TONE, WAV, 400),
    ("POST", "/v1/classify", *multipart(TONE, name="other"), 400),
    ("POST", "/v1/embed?encoding=hex", TONE, WAV, 400),
    ("GET", "/nope", None, {}, 404),
    ("GET", "/v1/classify", None, {}, 405),
    ("DELETE", "/v1/models", None, {}, 405),
    ("POST", "/v1/classify", None, WAV, 411),
    ("POST", "/v1/embed", b"\0" * (MAX_BODY + 1), WAV, 413),
    ("POST", "/v1/classify", TONE, {"Content-Type": "text/plain"}, 415),
    ("POST", "/v1/classify", b"not a media file at all" * 100, WAV, 422),
    ("POST", "/v1/classify?modality=video", TONE, WAV, 422),
    ("GET", "/v2", None, {}, 200),
    ("GET", "/v2/health/live", None, {}, 200),
    ("GET", "/v2/health/ready", None, {}, 200),
    ("GET", "/v2/models/avmae-demo", None, {}, 200),
    ("GET", "/v2/models/avmae-demo/ready", None, {}, 200),
    ("POST", INFER, *v2_binary([clip_input(TONE)]), 200),
    ("POST", INFER, *v2_binary([clip_input(CLIP)], outputs=[{"name": "PROBABILITIES", "parameters": {"classification": 3}},
                                                         {"name": "VIDEO_EMBEDDING"}]), 200),
    ("POST", INFER, json.dumps({"inputs": [{"name": "WAVEFORM", "datatype": "FP32", "shape": [1, 160000],
                                            "data": [0.0] * 160000}]}).encode(), {"Content-Type": "application/json"}, 200),
    ("POST", INFER, json.dumps({"inputs": [{"name": "WAVEFORM", "datatype": "FP32", "shape": [1, 4],
                                            "data": [0.0] * 4}]}).encode(), {"Content-Type": "application/json"}, 400),
    ("POST", INFER, *v2_binary([("WAVEFORM", "FP32", [1, 160000], b"\0" * 10)]), 400),
    ("GET", "/v2/models/nope", None, {}, 404),
    ("GET", "/v2/models/avmae-demo/versions/no-such-version", None, {}, 404),
    ("GET", "/v2/nope", None, {}, 404),
    ("GET", INFER, None, {}, 405),
    ("POST", INFER, None, {}, 411),
    ("POST", INFER, b"\0" * (MAX_BODY + 1), {"Inference-Header-Content-Length": "2"}, 413),
    ("POST", INFER, *v2_binary([clip_input(b"not a media file at all" * 100)]), 422),
]


@pytest.mark.parametrize("method,path,body,headers,expected", CASES,
                         ids=[f"{c[0]} {c[1]} -> {c[4]}" for c in CASES])
def test_response_matches_contract(spec, daemon, method, path, body, headers, expected):
    status, response_headers, payload = request(daemon, method, path, body, headers)
    assert status == expected, payload[:300]
    if method == "HEAD":
        assert payload == b""
        return
    check(spec, method, path.split("?")[0], status, response_headers, payload)
    if status == 405:
        assert "allow" in response_headers


def test_versioned_model_paths_match_contract(spec, daemon):
    """/versions/{version} paths at the version the model metadata lists."""
    version = json.loads(request(daemon, "GET", "/v2/models/avmae-demo")[2])["versions"][0]
    for path in (f"/v2/models/avmae-demo/versions/{version}", f"/v2/models/avmae-demo/versions/{version}/ready"):
        status, headers, payload = request(daemon, "GET", path)
        assert status == 200, payload
        check(spec, "GET", path, status, headers, payload)


@pytest.mark.parametrize("path", ["/v1/classify?stream=true&top_k=2", "/v1/embed?stream=true&encoding=base64"])
def test_streamed_lines_match_contract(spec, daemon, path):
    """?stream=true: application/x-ndjson, one StreamLine per window in order, then the summary."""
    status, headers, payload = request(daemon, "POST", path, LONG, {"Content-Type": "audio/flac"})
    assert status == 200, payload[:300]
    check(spec, "POST", path.split("?")[0], status, headers, payload)
    assert headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in payload.decode().splitlines()]
    registry = Registry().with_resource("spec", Resource.from_contents(spec, default_specification=DRAFT4))
    validator = OAS30Validator({"$ref": "spec#/components/schemas/StreamLine"}, registry=registry)
    for line in lines:
        validator.validate(line)
    assert [line["window"] for line in lines[:-1]] == [0, 1, 2]  # 25 s: 0, 10 and the last 10 s from 15
    assert lines[-1]["summary"]["windows_used"] == 3


def test_overload_and_not_ready_answers_match_contract(spec):
    """503s: the queue full (max_queue=1, four-crop video clips) and not ready (the bundle is missing)."""
    with tempfile.TemporaryDirectory() as scratch:
        proc, port = start_daemon(scratch, {"max_batch": 1, "max_queue": 1, "max_delay_ms": 0})
        try:
            wait_ready(port)
            import concurrent.futures
            with concurrent.futures.ThreadPoolExecutor(12) as pool:
                results = list(pool.map(lambda _: request(port, "POST", "/v1/classify?crops=4", CLIP,
                                                          {"Content-Type": "video/mp4"}), range(12)))
            refused = [r for r in results if r[0] == 503]
            assert refused, [r[0] for r in results]
            for status, headers, payload in results:
                check(spec, "POST", "/v1/classify", status, headers, payload)
        finally:
            proc.terminate()
            assert proc.wait(timeout=60) == 0
        args = [BINARY, "serve", "--bundle", os.path.join(scratch, "missing"), "--host", "127.0.0.1", "--port", "0"]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
        try:
            time.sleep(0.5)
            for method, path in [("GET", "/readyz"), ("GET", "/v1/models"), ("GET", "/healthz")]:
                status, headers, payload = request(port, method, path)
                check(spec, method, path, status, headers, payload)
            status, headers, payload = request(port, "GET", "/readyz")
            assert status == 503 and json.loads(payload)["reason"] == "load_failed"
            assert "config.json" in json.loads(payload)["message"]
            status, headers, payload = request(port, "POST", "/v1/classify", TONE, WAV)
            assert status == 503
            check(spec, "POST", "/v1/classify", status, headers, payload)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def test_unauthorized_answers_match_contract(spec):
    """401s from a server started with an API key file: no key, wrong key; the probes stay open."""
    with tempfile.TemporaryDirectory() as scratch:
        keys = os.path.join(scratch, "keys")
        pathlib.Path(keys).write_text("# contract\ncontract-key-0123456789\n")
        proc, port = start_daemon(scratch, {"api_key_file": keys})
        try:
            wait_ready(port)
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                for method, path, body, extra in [("GET", "/v1/models", None, {}),
                                                  ("POST", "/v1/classify", TONE, WAV),
                                                  ("POST", "/v1/embed", TONE, WAV)]:
                    status, response_headers, payload = request(port, method, path, body, {**extra, **headers})
                    assert status == 401, payload[:300]
                    assert response_headers["www-authenticate"] == 'Bearer realm="avmae-serve"'
                    check(spec, method, path, status, response_headers, payload)
            good = {"Authorization": "Bearer contract-key-0123456789"}
            status, response_headers, payload = request(port, "POST", "/v1/classify", TONE, {**WAV, **good})
            assert status == 200
            check(spec, "POST", "/v1/classify", status, response_headers, payload)
            for path in ("/healthz", "/readyz", "/metrics", "/"):
                status, response_headers, payload = request(port, "GET", path)
                assert status == 200
                check(spec, "GET", path, status, response_headers, payload)
        finally:
            proc.terminate()
            assert proc.wait(timeout=60) == 0
