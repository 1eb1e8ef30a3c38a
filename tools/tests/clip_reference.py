"""The FFmpeg-CLI and numpy half of the clip reference (test_clip_reference.py): what a clip should become, worked
out without any of avmae-serve's code.

- Pictures: `ffmpeg` decodes every picture of the clip to rgb24 (rotated as the display matrix says, as a player
  shows it) and `ffprobe` gives each its timestamp; the picture the model shows at time t is the last one stamped
  at or before t.
- Times: spec Part A.4 / Part B §2 (DMVR's eval sampling) applied to the clip's length as `ffprobe` reads it.
- Sound: `ffmpeg` decodes it at its own rate; the channels are averaged; soxr and scipy resample it to 16 kHz.
"""
from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

# Sample times are sums like 1.0 + 67 / 25; a picture stamped within this of a time is on screen at it. Only float
# rounding is meant: picture stamps are exact fractions and real frame steps are >= 1/1000 s.
STAMP_TOLERANCE = 1e-9


def ffmpeg(*args) -> bytes:
    result = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *map(str, args)], capture_output=True)
    if result.returncode != 0:
        raise AssertionError(f"ffmpeg {' '.join(map(str, args))} failed: {result.stderr.decode()[-2000:]}")
    return result.stdout


def ffprobe(path: Path, entries: str, stream: str = "v:0") -> dict:
    result = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", entries,
                             "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


# ------------------------------------------------------------------------------------------------- pictures

@dataclass
class Pictures:
    """Every decoded picture of a clip's first video stream, as shown (rotated), with its time in clip seconds."""
    rgb: np.ndarray  # (n, H, W, 3) uint8
    times: np.ndarray  # (n,) float64, increasing
    rotation: int

    def shown_at(self, t: float) -> int:
        """Index of the picture on screen at t: the last stamped at or before t (the first for earlier times)."""
        return max(0, int(np.searchsorted(self.times, t + STAMP_TOLERANCE, side="right")) - 1)


def decode_pictures(path: Path, scale_flags: str | None = None) -> Pictures:
    """scale_flags: swscale flags for the yuv -> rgb24 conversion (None: the ffmpeg CLI's own default)."""
    info = ffprobe(path, "stream=time_base:stream_side_data=rotation:format=start_time:"
                         "frame=best_effort_timestamp,width,height")
    stream = info["streams"][0]
    time_base = Fraction(stream["time_base"])
    # format start_time is printed in microseconds, the unit FFmpeg keeps it in, so this is exact.
    origin = Fraction(info["format"].get("start_time", "0"))
    rotation = int(next((s["rotation"] for s in stream.get("side_data_list", []) if "rotation" in s), 0)) % 360
    frames = info["frames"]
    width, height = frames[0]["width"], frames[0]["height"]
    if rotation in (90, 270):
        width, height = height, width
    convert = ["-vf", f"scale=flags={scale_flags},format=rgb24"] if scale_flags else []
    raw = ffmpeg("-i", path, "-map", "0:v:0", "-vsync", "passthrough", *convert, "-pix_fmt", "rgb24",
                 "-f", "rawvideo", "-")
    rgb = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    assert len(rgb) == len(frames), f"{path.name}: ffmpeg wrote {len(rgb)} pictures, ffprobe saw {len(frames)}"
    times = np.array([float(int(f["best_effort_timestamp"]) * time_base - origin) for f in frames])
    assert np.all(np.diff(times) > 0), f"{path.name}: picture times do not increase"
    return Pictures(rgb, times, rotation)


# ------------------------------------------------------------------------------------------------- times

def clip_seconds(path: Path) -> float:
    """The container's length, which the server takes as a video-only clip's length."""
    return float(ffprobe(path, "format=duration")["format"]["duration"])


def window_starts(seconds: float, window: float, rate: int = 16000) -> list[float]:
    """The project's windowing (Media/Windowing.swift; the spec only says "cut into windows, hop = window"): one
    window if the clip fits, else starts k * window, the last pulled back to end at the clip's end. In samples
    at the model's rate, as the clip's length is."""
    n, w = round(seconds * rate), round(window * rate)
    if n <= w:
        return [0.0]
    count = math.ceil((n - w) / w) + 1
    return [min(k * w, n - w) / rate for k in range(count)]


def frame_times(start: float, seconds: float, window: float, frames: int, stride: int, fps: float,
                crops: int) -> np.ndarray:
    """Spec Part A.4 / Part B §2, DMVR's eval sampling over the window's frames at `fps`:
    N = the window's whole frame periods (the spec does not say how a fractional last period rounds; see
    models/README.md, "What stays unknown"); one crop starts at max(0, floor((N - frames * stride) / 2)), four at
    floor(linspace(0, max(0, N - frames * stride), 4)); frame k of a crop is index (offset + k * stride) mod N,
    shown at start + index / fps."""
    visible = min(window, seconds - start)
    n = max(1, int(math.floor(visible * fps + 1e-9)))
    span = frames * stride
    if crops == 1:
        offsets = [max(0, (n - span) // 2)]
    else:
        offsets = [int(x) for x in np.floor(np.linspace(0, max(0, n - span), crops))]
    return np.array([[start + ((o + k * stride) % n) / fps for k in range(frames)] for o in offsets])  # (crops, T)


# ------------------------------------------------------------------------------------------------- sound

def decode_sound(path: Path, *filters: str) -> np.ndarray:
    """The first audio stream as float32 through the ffmpeg CLI: (samples, channels) at the file's own rate when no
    filters are given."""
    channels = int(ffprobe(path, "stream=channels", "a:0")["streams"][0]["channels"])
    raw = ffmpeg("-i", path, "-map", "0:a:0", *filters, "-f", "f32le", "-")
    samples = np.frombuffer(raw, np.float32)
    return samples.reshape(-1, channels) if not filters else samples


def resample_soxr(mono: np.ndarray, rate: int, target: int = 16000) -> np.ndarray:
    import soxr
    return soxr.resample(mono.astype(np.float64), rate, target, quality="VHQ")


def resample_poly(mono: np.ndarray, rate: int, target: int = 16000) -> np.ndarray:
    """scipy's polyphase resampler with a 64-zero-crossing Kaiser (beta 8) low-pass at the lower Nyquist. Its
    default filter (Kaiser beta 5, 20 zero crossings) is itself only ~60 dB from soxr VHQ: too coarse a ruler."""
    from scipy import signal
    g = math.gcd(rate, target)
    up, down = target // g, rate // g
    taps = signal.firwin(2 * 32 * max(up, down) + 1, 1.0 / max(up, down), window=("kaiser", 8.0))
    return signal.resample_poly(mono.astype(np.float64), up, down, window=taps)


def snr_db(reference: np.ndarray, ours: np.ndarray, skip: int) -> float:
    """10 log10(|ref|^2 / |ours - ref|^2) over the common length minus `skip` samples at each end."""
    n = min(len(reference), len(ours))
    r = np.asarray(reference[skip:n - skip], np.float64)
    e = np.asarray(ours[skip:n - skip], np.float64) - r
    return math.inf if not e.any() else 10 * math.log10(np.sum(r * r) / np.sum(e * e))


def loop(samples: np.ndarray, length: int) -> np.ndarray:
    """Spec Part A.4: audio shorter than the window is looped (wrap-around), as DMVR's sampler does."""
    return np.resize(samples, length) if len(samples) < length else samples[:length]
