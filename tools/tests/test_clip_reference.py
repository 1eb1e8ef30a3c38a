"""`avmae-serve run --clip` against references nobody here wrote (issue 12 §2): each step from an uploaded file to
the model's input tensors, checked against FFmpeg's CLI, TensorFlow, soxr and scipy.

- Times: the frame times and window starts against spec Part A.4 / Part B §2 worked out in Python
  (clip_reference.frame_times) for 1, 10 and 25 s clips at 24, 25, 29.97 and 60 fps and a variable frame rate.
- Frames: the uint8 frames against FFmpeg-CLI pictures resized and cropped by TensorFlow as DMVR does
  (tf_clip_reference.py), for landscape, portrait, rotated, odd-sized, 10-bit and full-range clips, 1 and 4 crops.
- Sound: the 16 kHz waveform against the FFmpeg CLI's own resampling and against soxr and scipy, 8 to 48 kHz.
- End to end: logits of the compact (committed) and tiny (golden) checkpoints on the reference inputs (TF frames,
  soxr sound, TF log-mel) against `run --clip` on the same files.

Clips are made with the ffmpeg CLI at test time. Needs AVMAE_SERVE_BIN; the frame and end-to-end checks need
TensorFlow (AVMAE_TF_PYTHON, see tools/setup_tf_venv.sh) and say so when they did not run. Measured differences are
printed (pytest -s) and recorded in models/README.md, "What `run --clip` shows, checked against independent
references".
"""
from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from scipy import signal
from scipy.io import wavfile

import clip_reference as ref
from checkpoints import FIXTURE_CHECKPOINTS, REPO
from conftest import run_converter, tf_python

BIN = os.environ.get("AVMAE_SERVE_BIN")
GOLDEN_DIR = os.environ.get("AVMAE_GOLDEN_DIR")
TF_PYTHON = tf_python()
TF_SCRIPT = REPO / "tools" / "tests" / "tf_clip_reference.py"
pytestmark = pytest.mark.skipif(not BIN, reason="AVMAE_SERVE_BIN is not set: the run --clip reference checks did "
                                "not run (Tests/run.sh sets it after building the binary)")
needs_tf = pytest.mark.skipif(TF_PYTHON is None, reason="TensorFlow is not importable (no AVMAE_TF_PYTHON, no "
                              ".venv-tf): the frame and end-to-end reference checks did not run "
                              "(tools/setup_tf_venv.sh)")
needs_golden = pytest.mark.skipif(not GOLDEN_DIR, reason="AVMAE_GOLDEN_DIR is not set: the tiny-checkpoint end-to-end "
                                  "check (../shared/golden/tiny) did not run")

# Bundles: the compact golden checkpoints with the release clip numbers (their sizes do not matter to the clip path).
RELEASE = ["--fusion-layer", "1", "--label-set", "audioset", "--placeholder-labels", "--clip-seconds", "10"]
BUNDLES = {
    "finetuned": ("ft_v", RELEASE),                                             # 32 frames, stride 2, short side 256
    "pretrained": ("ft_v", RELEASE + ["--frames", "16", "--stride", "4", "--resize-short", "224"]),
    "audio": ("ft_a", RELEASE[:-1] + ["4"]),                                    # a 4 s window over 3 s sources: looped
    "av": ("ft_av", RELEASE),
}
X264 = ["-c:v", "libx264", "-preset", "ultrafast"]


def run_clip(bundle: Path, clip: Path, out: Path, crops: int) -> dict:
    result = subprocess.run([BIN, "run", "--bundle", str(bundle), "--clip", str(clip), "--crops", str(crops),
                             "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, f"run --clip {clip.name} failed: {result.stderr}"
    return load_file(str(out))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("bundles")
    paths = {}
    for name, (checkpoint, args) in BUNDLES.items():
        paths[name] = folder / name
        run_converter(FIXTURE_CHECKPOINTS / f"{checkpoint}.flax.msgpack", "--out", paths[name], *args)
    if GOLDEN_DIR:
        paths["tiny-av"] = folder / "tiny-av"
        run_converter(Path(GOLDEN_DIR) / "tiny" / "checkpoints" / "ft_av.flax.msgpack", "--out", paths["tiny-av"],
                      *RELEASE)
    return paths


def bundle_config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


# ------------------------------------------------------------------------------------------------- video clips

@dataclass
class VideoCase:
    """A clip made with ffmpeg: `source` a lavfi graph, encoded with `codec`, then remuxed with a display matrix
    turning it by `rotate` degrees. `cli_default` says whether `ffmpeg`'s own default conversion to rgb24 must give
    the same bytes (see test_frames_equal_the_reference)."""
    source: str
    seconds: float
    codec: list[str]
    suffix: str = "mp4"
    rotate: int = 0
    bundle: str = "finetuned"
    crops: int = 1
    cli_default: bool = True
    audio: list[str] = field(default_factory=list)  # extra lavfi input and codec for a sound track

    def make(self, folder: Path, name: str) -> Path:
        path = folder / f"{name}.{self.suffix}"
        encoded = folder / f"{name}.encoded.{self.suffix}" if self.rotate else path
        ffmpeg_audio = ["-f", "lavfi", "-i", self.audio[0], *self.audio[1:]] if self.audio else []
        ref.ffmpeg("-f", "lavfi", "-i", self.source, *ffmpeg_audio[:4], "-t", self.seconds, *self.codec,
                   *ffmpeg_audio[4:], encoded)
        if self.rotate:  # ffmpeg 5.1 writes the display matrix only on a remux
            ref.ffmpeg("-i", encoded, "-c", "copy", "-metadata:s:v:0", f"rotate={self.rotate}", path)
        return path


def lavfi(width: int, height: int, rate: str) -> str:
    """testsrc2 (moving, every picture differs) at any size: the crop goes through rgb24, because cropping a 4:2:0
    picture rounds odd sizes down to even ones."""
    return f"testsrc2=size={width + width % 2}x{height + height % 2}:rate={rate},format=rgb24,crop={width}:{height}:0:0"


YUV420 = ["-pix_fmt", "yuv420p"]
FRAME_CASES = {
    "landscape_320x240": VideoCase(lavfi(320, 240, "25"), 3, X264 + YUV420),
    "portrait_540x960_4crops": VideoCase(lavfi(540, 960, "30"), 3, X264 + YUV420, bundle="pretrained", crops=4),
    "rotated90_480x270": VideoCase(lavfi(480, 270, "25"), 2, X264 + YUV420, rotate=90),
    "rotated180_4crops": VideoCase(lavfi(320, 240, "25"), 3, X264 + YUV420, rotate=180, crops=4),
    "rotated270_odd_yuv444_301x267": VideoCase(lavfi(301, 267, "25"), 2, X264 + ["-pix_fmt", "yuv444p"], rotate=270),
    "bt709_tagged": VideoCase(lavfi(320, 240, "25"), 2, X264 + YUV420 + ["-colorspace", "bt709", "-color_primaries",
                                                                          "bt709", "-color_trc", "bt709"]),
    # swscale's generic path (odd 4:2:0, 10-bit): chroma upsampling follows the scale flags, see the test.
    "odd_vp9_333x251_4crops": VideoCase(lavfi(333, 251, "25"), 2, ["-c:v", "libvpx-vp9", "-deadline", "realtime"]
                                        + YUV420, suffix="webm", crops=4, cli_default=False),
    "odd_mjpeg_full_range_333x251": VideoCase(lavfi(333, 251, "25"), 2, ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p"],
                                              suffix="avi", cli_default=False),
    "ten_bit_yuv420p10": VideoCase(lavfi(320, 240, "25"), 2, X264 + ["-pix_fmt", "yuv420p10le"], cli_default=False),
}

# Times: 64x48 pictures keep 25 s at 60 fps cheap; four crops on the longest clips, where windows overlap.
RATES = {"24": "24", "25": "25", "29.97": "30000/1001", "60": "60"}
TIME_CASES = {
    f"{seconds}s_{label}fps": VideoCase(lavfi(64, 48, rate), seconds, X264 + YUV420,
                                        crops=4 if seconds == 25 and label in ("29.97", "60") else 1)
    for seconds in (1, 10, 25) for label, rate in RATES.items()
}
TIME_CASES["10s_25fps_pretrained_4crops"] = VideoCase(lavfi(64, 48, "25"), 10, X264 + YUV420, bundle="pretrained",
                                                      crops=4)
# Variable frame rate: 2 s at 30 fps, then 15 fps; the container says 9.967 s.
TIME_CASES["vfr_30_then_15fps"] = VideoCase(
    lavfi(64, 48, "30") + ",setpts='if(lt(N,60),N/30,2+(N-60)/15)/TB'", 20, X264 + YUV420 + ["-vsync", "vfr",
                                                                                                   "-frames:v", "180"])


@pytest.fixture(scope="module")
def video_runs(tmp_path_factory, bundles) -> dict:
    """Every frame and time case made and run through `run --clip`: name -> (clip, case, run outputs file)."""
    folder = tmp_path_factory.mktemp("video")
    runs = {}
    for name, case in {**FRAME_CASES, **TIME_CASES}.items():
        clip = case.make(folder, name)
        out = folder / f"{name}.safetensors"
        run_clip(bundles[case.bundle], clip, out, case.crops)
        runs[name] = (clip, case, out)
    return runs


@pytest.mark.parametrize("name", sorted(TIME_CASES))
def test_frame_times_follow_the_spec(video_runs, bundles, name):
    clip, case, out = video_runs[name]
    config = bundle_config(bundles[case.bundle])
    got = load_file(str(out))
    seconds = ref.clip_seconds(clip)
    starts = ref.window_starts(seconds, config["clip_seconds"])
    np.testing.assert_allclose(got["window_starts"], starts, atol=1e-9, err_msg=f"{name}: window starts")
    expected = np.stack([ref.frame_times(s, seconds, config["clip_seconds"], config["frames"], config["stride"],
                                         config["fps"], case.crops) for s in starts])  # (W, crops, T)
    assert got["frame_times"].shape == expected.shape, f"{name}: {got['frame_times'].shape} != {expected.shape}"
    worst = float(np.max(np.abs(got["frame_times"] - expected)))
    print(f"times {name}: {seconds:.6f} s, windows at {starts}, worst |ours - spec| = {worst:.1e} s")
    assert worst <= 1e-9, f"{name}: frame times differ from the spec's by up to {worst} s"


# ------------------------------------------------------------------------------------------------- frames

@dataclass
class FrameComparison:
    share: float  # of bytes that differ
    worst: int
    picks: int  # distinct pictures shown

    @staticmethod
    def of(ours: np.ndarray, reference: np.ndarray, picks: int) -> "FrameComparison":
        assert ours.shape == reference.shape, f"{ours.shape} != reference {reference.shape}"
        diff = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
        return FrameComparison(float(np.mean(diff > 0)), int(diff.max()), picks)


@pytest.fixture(scope="module")
def tf_reference(tmp_path_factory, video_runs, bundles, e2e_runs) -> dict:
    """One TensorFlow process for every frame and log-mel reference (importing TF is most of its cost)."""
    if TF_PYTHON is None:
        pytest.skip("TensorFlow is not importable: the frame and end-to-end reference checks did not run")
    folder = tmp_path_factory.mktemp("tf")
    jobs, outputs = [], {}

    def add(kind: str, key: tuple, data: np.ndarray, **params) -> None:
        stem = "_".join(map(str, key))
        np.save(folder / f"{stem}.in.npy", data)
        jobs.append({"kind": kind, "input": str(folder / f"{stem}.in.npy"), "output": str(folder / f"{stem}.npy"),
                     **params})
        outputs[key] = folder / f"{stem}.npy"

    picks = {}
    for name, (clip, case, out) in {**video_runs, **{k: v[:3] for k, v in e2e_runs.items()}}.items():
        times = load_file(str(out))["frame_times"].reshape(-1)
        resize = bundle_config(bundles[case.bundle])["resize_short"]
        variants = {"cli": None} if case.cli_default else {"cli": None, "bilinear": "bilinear"}
        for variant, flags in variants.items():
            pictures = ref.decode_pictures(clip, flags)
            shown = [pictures.shown_at(t) for t in times]
            picks[name] = len(set(shown))
            add("frames", ("frames", name, variant), pictures.rgb[shown], resize_short=resize, crop=224)
    for name, run in e2e_runs.items():
        frontend = bundle_config(bundles[run[1].bundle])["frontend"]
        add("log_mel", ("log_mel", name), run[3], frontend=frontend)

    (folder / "jobs.json").write_text(json.dumps(jobs))
    result = subprocess.run([TF_PYTHON, str(TF_SCRIPT), str(folder / "jobs.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"outputs": outputs, "picks": picks}


@needs_tf
@pytest.mark.parametrize("name", sorted(FRAME_CASES) + sorted(TIME_CASES))
def test_frames_equal_the_reference(video_runs, tf_reference, name):
    """Equal bytes. The reference's yuv -> rgb24 is the ffmpeg CLI's default where swscale converts without
    resampling chroma (8-bit 4:2:0 / 4:2:2 / 4:4:4 at even sizes); on its generic path (odd 4:2:0 sizes, 10-bit),
    chroma is upsampled with the filter the scale flags name, bilinear in the server (Media/Scaler.swift) and
    bicubic in the CLI by default, so there the reference names bilinear and the default's difference is printed."""
    clip, case, out = video_runs[name]
    ours = load_file(str(out))["frames"].reshape(-1, 224, 224, 3)
    variant = "cli" if case.cli_default else "bilinear"
    reference = np.load(tf_reference["outputs"][("frames", name, variant)])
    picks = tf_reference["picks"][name]
    result = FrameComparison.of(ours, reference, picks)
    note = ""
    if not case.cli_default:
        default = FrameComparison.of(ours, np.load(tf_reference["outputs"][("frames", name, "cli")]), picks)
        note = f"; vs the CLI's default (bicubic chroma): {default.share:.2%} of bytes differ, worst {default.worst}"
    print(f"frames {name}: {len(ours)} frames from {picks} pictures, {result.share:.2%} of bytes differ, "
          f"worst {result.worst}{note}")
    assert picks > 1, f"{name}: every sampled time shows the same picture; the check could not tell frames apart"
    assert (result.share, result.worst) == (0.0, 0), f"{name}: {result}"


# ------------------------------------------------------------------------------------------------- sound

def rich_signal(rate: int, seconds: float, channels: int, seed: int) -> np.ndarray:
    """Per channel a log chirp 50 Hz -> 0.9 * min(7 kHz, Nyquist), low-passed noise and a tone, faded in and out
    over 10 ms so the clip edges are not steps (each resampler rings differently at a step). (samples, channels)."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    top = 0.9 * min(7000.0, rate / 2)
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * rate))
    columns = []
    for c in range(channels):
        chirp = 0.3 * signal.chirp(t, 50, seconds, top, method="logarithmic", phi=90 * c)
        noise = 0.1 * signal.lfilter(signal.firwin(511, 0.95 * top, fs=rate), 1, rng.standard_normal(n))
        columns.append((chirp + noise + 0.2 * np.sin(2 * np.pi * 440 * (c + 1) * t)) * fade)
    return np.stack(columns, 1).astype(np.float32)



@dataclass
class SoundCase:
    rate: int
    channels: int
    encode: list[str]  # ffmpeg codec arguments; [] keeps the float WAV
    suffix: str


SOUND_CASES = {
    "8k_mono_wav_s16": SoundCase(8000, 1, ["-c:a", "pcm_s16le"], "wav"),
    "22.05k_stereo_flac": SoundCase(22050, 2, ["-c:a", "flac"], "flac"),
    "44.1k_stereo_wav": SoundCase(44100, 2, [], "wav"),
    "48k_mono_aac": SoundCase(48000, 1, ["-c:a", "aac", "-b:a", "256k"], "m4a"),
    "48k_stereo_wav": SoundCase(48000, 2, [], "wav"),
}
SOUND_SECONDS = 3.0
EDGE = 400  # samples at 16 kHz left out at each end of an SNR: 25 ms, past the fades and every filter's tail


@pytest.fixture(scope="module")
def sound_runs(tmp_path_factory, bundles) -> dict:
    folder = tmp_path_factory.mktemp("sound")
    runs = {}
    for seed, (name, case) in enumerate(SOUND_CASES.items()):
        wav = folder / f"{name}.source.wav"
        wavfile.write(wav, case.rate, rich_signal(case.rate, SOUND_SECONDS, case.channels, seed))
        clip = folder / f"{name}.{case.suffix}"
        ref.ffmpeg("-i", wav, *case.encode, clip) if case.encode else wav.rename(clip)
        waveform = run_clip(bundles["audio"], clip, folder / f"{name}.safetensors", 1)["waveform"]
        assert waveform.shape[0] == 1, f"{name}: {waveform.shape[0]} windows for a clip shorter than one"
        runs[name] = (clip, case, waveform[0])
    return runs


def mean_of_channels(channels: int) -> list[str]:
    return ["-af", "pan=mono|c0=" + "+".join(f"{1 / channels}*c{i}" for i in range(channels)), "-ar", "16000"]


@pytest.mark.parametrize("name", sorted(SOUND_CASES))
def test_waveform_matches_the_ffmpeg_cli(sound_runs, name):
    """The CLI with the same mono mix (the mean of the channels) resamples with the same swresample defaults, so
    the waveforms agree to float rounding. The CLI's own `-ac 1` adds stereo channels at 1/sqrt(2) each: the same
    waveform 3 dB louder (log-mel +0.35 in loud bins), which is why the server sets the mean explicitly."""
    clip, case, ours = sound_runs[name]
    cli = ref.decode_sound(clip, *mean_of_channels(case.channels))
    snr = ref.snr_db(cli, ours, 0)
    message = f"sound {name}: vs ffmpeg CLI (mean of channels, -ar 16000): SNR {snr:.1f} dB"
    if case.channels == 2:
        ac1 = ref.decode_sound(clip, "-ar", "16000", "-ac", "1")
        gain = float(np.dot(ac1, ours[:len(ac1)]) / np.dot(ours[:len(ac1)], ours[:len(ac1)]))
        message += f"; vs -ac 1: SNR {ref.snr_db(ac1, ours, 0):.1f} dB, gain {gain:.5f}"
        assert abs(gain - math.sqrt(2)) < 1e-4, f"{name}: -ac 1 is {gain} x ours, not sqrt(2)"
    print(message)
    assert snr >= 120, message


@pytest.mark.parametrize("name", sorted(SOUND_CASES))
def test_waveform_matches_independent_resamplers(sound_runs, name):
    """soxr (VHQ) and scipy's resample_poly, both from the CLI's decode at the file's own rate, mixed to the mean.
    The goal is 60 dB. What limits it is swresample's default filter (32 taps, cutoff 0.97), which rolls off the top
    tenth of a source's band: from 8 kHz it passes 3.4 kHz at -0.02 dB, 3.6 kHz at -0.37 dB, 3.8 kHz at -1.7 dB,
    and the test chirp ends at 3.6 kHz (67 dB measured; 83 dB and up from 22.05 kHz on).
    The clips are 3 s in a 4 s window; the remaining second must be the clip again from its start (spec A.4)."""
    clip, case, ours = sound_runs[name]
    mono = ref.decode_sound(clip).mean(axis=1)
    soxr16 = ref.resample_soxr(mono, case.rate)
    poly16 = ref.resample_poly(mono, case.rate)
    snrs = {"soxr": ref.snr_db(soxr16, ours, EDGE), "resample_poly": ref.snr_db(poly16, ours, EDGE),
            "soxr vs resample_poly": ref.snr_db(soxr16, poly16, EDGE)}
    print(f"sound {name}: SNR " + ", ".join(f"{k} {v:.1f} dB" for k, v in snrs.items()))
    assert snrs["soxr"] >= 60 and snrs["resample_poly"] >= 60, snrs

    length = len(ref.decode_sound(clip, "-ac", "1", "-ar", "16000"))
    assert abs(length - len(soxr16)) <= 128, f"{name}: {length} samples at 16 kHz, soxr gives {len(soxr16)}"
    np.testing.assert_array_equal(ours[length:], ours[:len(ours) - length], err_msg=f"{name}: not looped")


# ------------------------------------------------------------------------------------------------- end to end

E2E_CASES = {
    "av_4s_landscape_44.1k_stereo": VideoCase(lavfi(320, 240, "25"), 4, X264 + YUV420, bundle="av", audio=[
        "aevalsrc=0.3*sin(2*PI*(200+900*t)*t)|0.2*sin(2*PI*(300+500*t)*t)+0.05*sin(2*PI*3100*t):s=44100",
        "-c:a", "aac", "-b:a", "192k"]),
    "av_12s_rotated_4crops_48k_mono": VideoCase(lavfi(320, 240, "30"), 12, X264 + YUV420, bundle="av", rotate=90,
                                                crops=4, audio=["anoisesrc=c=pink:a=0.2:s=48000,lowpass=f=6000",
                                                                "-c:a", "aac", "-b:a", "192k"]),
}


@pytest.fixture(scope="module")
def e2e_runs(tmp_path_factory, bundles) -> dict:
    """name -> (clip, case, run outputs file, reference log-mel input (W, samples), bundle key, ours)."""
    folder = tmp_path_factory.mktemp("e2e")
    runs = {}
    models = ["av"] + (["tiny-av"] if "tiny-av" in bundles else [])
    for name, case in E2E_CASES.items():
        clip = case.make(folder, name)
        native = ref.decode_sound(clip)
        rate = int(ref.ffprobe(clip, "stream=sample_rate", "a:0")["streams"][0]["sample_rate"])
        sound = ref.resample_soxr(native.mean(axis=1), rate).astype(np.float32)
        window = int(bundle_config(bundles["av"])["clip_seconds"] * 16000)
        starts = ref.window_starts(len(sound) / 16000, window / 16000)
        waveforms = np.stack([ref.loop(sound[round(s * 16000):], window) for s in starts])  # (W, samples)
        for model in models:
            key = f"{name}_{model}"
            out = folder / f"{key}.safetensors"
            runs[key] = (clip, VideoCase(**{**case.__dict__, "bundle": model}), out, waveforms, model,
                         run_clip(bundles[model], clip, out, case.crops))
    return runs


def e2e_check(tmp_path, bundles, e2e_runs, tf_reference, model: str) -> None:
    """The model is the same on both sides (test_run_cli checks it against upstream), so what differs is the clip
    path: the frames must be equal, and the sound differs only by the resamplers (swresample vs soxr): in the last
    few hundred Hz below 8 kHz for full-band sound, and where each rings at the loop seam of a short clip. Those
    reach the log-mel's top band (12 s pink noise: mean |diff| 1.3e-3, all of it above 7 kHz) and the frames around
    a loop seam (4 s clip: 1.1e-3, at frames 0, 400, 800), so the bounds are on the mean and on the logits
    (measured 3e-4 and 2.2e-3 relative; a 3 dB louder mix or a frame off by one costs far more)."""
    for key, (clip, case, out, waveforms, bundle, ours) in e2e_runs.items():
        if bundle != model:
            continue
        windows, crops = ours["logits"].shape[:2]
        assert len(waveforms) == windows, f"{key}: reference has {len(waveforms)} windows, ours {windows}"
        log_mel = np.load(tf_reference["outputs"][("log_mel", key)])  # (W, frames, mel)
        frames = np.load(tf_reference["outputs"][("frames", key, "cli")])  # (W * crops * T, 224, 224, 3)
        rows = windows * crops
        np.save(tmp_path / "spectrogram.npy", np.repeat(log_mel, crops, axis=0))  # a window's crops share its sound
        np.save(tmp_path / "frames.npy", frames.reshape(rows, -1, 224, 224, 3))
        result = subprocess.run([BIN, "run", "--bundle", str(bundles[bundle]), "--spectrogram",
                                 str(tmp_path / "spectrogram.npy"), "--frames", str(tmp_path / "frames.npy"),
                                 "--out", str(tmp_path / "reference.safetensors")], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        reference = load_file(str(tmp_path / "reference.safetensors"))["logits"].reshape(windows, crops, -1)
        logits_error = float(np.max(np.abs(ours["logits"] - reference)) / np.max(np.abs(reference)))
        mel = np.abs(ours["log_mel"] - log_mel)
        sound_snr = ref.snr_db(waveforms[-1], ours["waveform"][-1], EDGE)
        frame_bytes = float(np.mean(ours["frames"].reshape(frames.shape) != frames))
        print(f"end to end {key}: logits max|ours - ref| / max|ref| = {logits_error:.1e}; log-mel |diff| mean "
              f"{mel.mean():.1e}, 99th percentile {np.percentile(mel, 99):.1e}, max {mel.max():.1e}; last window's "
              f"waveform SNR {sound_snr:.1f} dB; frame bytes differing {frame_bytes:.2%}")
        assert frame_bytes == 0, key
        assert mel.mean() <= 3e-3, key
        assert logits_error <= 5e-3, key


@needs_tf
def test_end_to_end_compact(tmp_path, bundles, e2e_runs, tf_reference):
    e2e_check(tmp_path, bundles, e2e_runs, tf_reference, "av")


@needs_tf
@needs_golden
def test_end_to_end_tiny(tmp_path, bundles, e2e_runs, tf_reference):
    e2e_check(tmp_path, bundles, e2e_runs, tf_reference, "tiny-av")
