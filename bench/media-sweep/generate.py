#!/usr/bin/env python3
"""Generates the media sweep (issue 11): small files that together hold every pair of factor values that
ffmpeg can encode, and a manifest.json that lists each file with its factors. Python 3 standard library and
Debian 12's ffmpeg 5.1 only. The files are generated, never committed.

  python3 bench/media-sweep/generate.py OUT_DIR              # the full pairwise sweep (335 files, a few minutes)
  python3 bench/media-sweep/generate.py --plan-only OUT_DIR  # coverage and impossible pairs, no encoding
  python3 bench/media-sweep/generate.py --subset smoke OUT_DIR   # the bounded set the test suite decodes

Factors: container, video codec, pixel format, width, height, rotation, audio channels (0 = no sound), sample
format and sample rate. Pixel format and sample format mean what the file stores, i.e. what FFmpeg's decoder
hands our code, not what was fed to the encoder: NV12 fed to x264 is stored as planar 4:2:0 and decodes as
yuv420p, so it would not test NV12. Hence two notes:
  - "rgb24" is RGB content: packed in raw video (AVI stores it as bgr24, MOV as rgb24) and planar (gbrp) in
    H.264 (libx264rgb), HEVC, VP9 and AV1. NV12 is stored only by raw video, so rawvideo is an eighth codec.
  - sample format "flt" is also every lossy codec (AAC, MP3, Vorbis, Opus decode to float).

Not every combination can be encoded. The rules below say which cannot and why (found by trying each with
ffmpeg 5.1); a pair of values that no encodable file can hold is reported as impossible, with its reason.
Pairs that make no sense by construction (a video factor with an audio-only container, a sample format with
no sound) are counted apart as not applicable. The rows are chosen greedily (AETG-style: start from an
uncovered pair, then give each other factor the value that covers most uncovered pairs) until every possible
pair is covered. Every file is checked with ffprobe against the factors it is meant to have.
"""
import argparse
import concurrent.futures
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

SIZES = [1, 2, 15, 16, 17, 33, 127, 200, 360, 361, 480, 638, 720, 854, 1080, 1920, 2160]
ROTATIONS = [0, 90, 180, 270]
PIX_FMTS = ["yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "nv12", "gray", "rgb24"]
CODECS = ["h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg", "rawvideo"]
CHANNELS = list(range(9))
SAMPLE_FMTS = ["s16", "s32", "flt", "dbl", "u8"]
RATES = [8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000]
VIDEO_CONTAINERS = ["mp4", "mov", "mkv", "webm", "avi", "mpegts"]
AUDIO_CONTAINERS = ["wav", "flac", "ogg", "mp3", "m4a"]

FACTORS = ["container", "codec", "pix_fmt", "width", "height", "rotation", "channels", "sample_fmt", "sample_rate"]
DOMAINS = {
    "container": VIDEO_CONTAINERS + AUDIO_CONTAINERS, "codec": CODECS, "pix_fmt": PIX_FMTS, "width": SIZES,
    "height": SIZES, "rotation": ROTATIONS, "channels": CHANNELS, "sample_fmt": SAMPLE_FMTS, "sample_rate": RATES,
}
VIDEO = ["codec", "pix_fmt", "width", "height", "rotation"]
AUDIO = ["channels", "sample_fmt", "sample_rate"]

# Clips are 0.2 s (5 frames at 25 fps): enough for every decoder path, small enough for valgrind.
SECONDS = 0.2
FPS = 25
# MediaLimits.minVideoSide: a smaller picture is refused ("no usable stream") unless there is sound to decode.
MIN_VIDEO_SIDE = 16
# Raw frames above this make files of tens of MB; the pairs they would hold are covered by thinner shapes.
RAW_MAX_PIXELS = 1_000_000

VIDEO_CODECS_IN = {
    "mp4": {"h264", "hevc", "vp9", "av1", "mpeg4", "mjpeg"},
    "mov": {"h264", "hevc", "mpeg4", "mjpeg", "rawvideo"},
    "mkv": set(CODECS),
    "webm": {"vp8", "vp9", "av1"},
    "avi": {"h264", "vp8", "vp9", "av1", "mpeg4", "mjpeg", "rawvideo"},
    "mpegts": {"h264", "hevc", "mpeg4"},
}
CONTAINER_CODEC_NOTES = {
    ("mp4", "vp8"): "ffmpeg's MP4 muxer has no tag for VP8",
    ("mp4", "rawvideo"): "ffmpeg's MP4 muxer has no tag for raw video",
    ("mov", "vp8"): "ffmpeg's MOV muxer: VP8 muxing is not supported",
    ("mov", "vp9"): "ffmpeg's MOV muxer takes VP9 only in MP4",
    ("mov", "av1"): "ffmpeg's MOV muxer takes AV1 only in MP4",
    ("avi", "hevc"): "ffmpeg writes HEVC into AVI but its own demuxer reads it back as raw video",
}
PIX_FMTS_OF = {
    "h264": {"yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "gray", "rgb24"},
    "hevc": {"yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "gray", "rgb24"},
    "vp8": {"yuv420p"},
    "vp9": {"yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "rgb24"},
    "av1": {"yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "gray", "rgb24"},
    "mpeg4": {"yuv420p"},
    "mjpeg": {"yuv420p", "yuvj420p", "yuv422p", "yuv444p"},
}
RAW_PIX_FMTS_IN = {
    "avi": {"yuv420p", "yuv422p", "nv12", "gray", "rgb24"},
    "mkv": {"yuv420p", "yuvj420p", "yuv422p", "nv12", "gray"},
    "mov": {"rgb24"},
}
PIX_NOTES = {
    "nv12": "only raw video stores NV12 (encoders take it as input and store planar 4:2:0)",
    "yuvj420p": "the {codec} bitstream cannot say full range",
    "gray": "{codec} has no monochrome mode",
    "rgb24": "{codec} stores no RGB",
    "yuv420p10le": "{codec} is 8-bit only here",
    "yuv422p": "{codec} stores 4:2:0 only",
    "yuv444p": "{codec} stores 4:2:0 only",
}
FOUR_TWO_ZERO = {"yuv420p", "yuvj420p", "yuv420p10le", "nv12"}


def video_problems(container, codec, pix, w, h, rot):
    """Every reason this video configuration cannot be encoded (empty when it can)."""
    problems = []
    if codec not in VIDEO_CODECS_IN[container]:
        problems.append(CONTAINER_CODEC_NOTES.get((container, codec), f"{container} does not hold {codec}"))
    if codec == "rawvideo":
        formats = RAW_PIX_FMTS_IN.get(container, set())
        if container in RAW_PIX_FMTS_IN and pix not in formats:
            problems.append(f"raw video in {container} has no tag for {pix}")
        if w * h > RAW_MAX_PIXELS:
            problems.append("raw frames over 1 Mpixel are left out to keep files small")
    elif pix not in PIX_FMTS_OF[codec]:
        problems.append(PIX_NOTES[pix].format(codec=codec))
    if rot and container not in ("mp4", "mov"):
        problems.append("ffmpeg 5.1 writes a display matrix (rotation) only in MP4 and MOV")
    if codec == "h264" and pix in FOUR_TWO_ZERO and (w % 2 or h % 2):
        problems.append("x264 needs even sizes for 4:2:0")
    if codec == "h264" and pix == "yuv422p" and w % 2:
        problems.append("x264 needs an even width for 4:2:2")
    if codec == "hevc":
        if w < 16 or h < 16:
            problems.append("x265 refuses pictures under 16 px on a side")
        if pix in FOUR_TWO_ZERO | {"yuv422p"} and (w % 2 or h % 2):
            problems.append("x265 needs even sizes for 4:2:0 and 4:2:2")
        if w == 33 and h < 32:
            problems.append("x265 3.5 aborts on 33x16 and 33x17")
    return problems


AUDIO_CODECS_IN = {
    "wav": ["pcm"], "flac": ["flac"], "ogg": ["vorbis", "opus", "flac"], "mp3": ["mp3"], "m4a": ["aac", "alac"],
    "mp4": ["aac", "mp3", "opus", "alac"], "mov": ["pcm", "aac", "mp3", "alac"],
    "mkv": ["pcm", "flac", "alac", "aac", "mp3", "vorbis", "opus"], "avi": ["pcm", "mp3", "aac"],
    "mpegts": ["aac", "mp3", "opus"], "webm": ["vorbis", "opus"],
}
SAMPLE_FMTS_OF = {"pcm": set(SAMPLE_FMTS), "flac": {"s16", "s32"}, "alac": {"s16", "s32"},
                  "aac": {"flt"}, "mp3": {"flt"}, "vorbis": {"flt"}, "opus": {"flt"}}


def audio_codec_problems(container, codec, channels, fmt, rate):
    problems = []
    if fmt not in SAMPLE_FMTS_OF[codec]:
        problems.append(f"{codec} decodes to {'/'.join(sorted(SAMPLE_FMTS_OF[codec]))}")
    if codec == "mp3" and channels > 2:
        problems.append("mp3 has at most 2 channels")
    if codec == "alac" and channels in (4, 8):
        problems.append("ffmpeg's ALAC encoder has no 4- or 8-channel layout")
    if codec == "opus" and container == "mpegts" and channels == 7:
        problems.append("ffmpeg's MPEG-TS muxer writes 7-channel Opus its own demuxer cannot read")
    if codec == "aac" and rate > 96000:
        problems.append("aac stops at 96 kHz")
    if codec == "mp3" and rate > 48000:
        problems.append("mp3 stops at 48 kHz")
    if codec == "mp3" and container == "mp4" and rate < 16000:
        problems.append("ffmpeg's MP4 muxer refuses MP3 under 16 kHz as not standard")
    if codec == "opus" and rate != 48000:
        problems.append("opus always decodes at 48 kHz")
    return problems


def audio_codecs(container, channels, fmt, rate):
    return [c for c in AUDIO_CODECS_IN[container] if not audio_codec_problems(container, c, channels, fmt, rate)]


def audio_problems(container, channels, fmt, rate):
    """Every reason no codec `container` holds can store this sound (empty when one can)."""
    if audio_codecs(container, channels, fmt, rate):
        return []
    codecs = AUDIO_CODECS_IN[container]
    return [f"{container} holds {'/'.join(codecs)}, and {p}"
            for c in codecs for p in audio_codec_problems(container, c, channels, fmt, rate)]


class Space:
    """The encodable rows, split per container into video parts and audio parts (they meet only there)."""

    def __init__(self):
        self.video = {c: [] for c in DOMAINS["container"]}   # container -> [(codec, pix, w, h, rot)]
        self.audio = {c: [] for c in DOMAINS["container"]}   # container -> [(channels, fmt, rate)]
        self.video_reasons = {}                              # invalid video config -> reasons
        for c in VIDEO_CONTAINERS:
            for v in itertools.product(CODECS, PIX_FMTS, SIZES, SIZES, ROTATIONS):
                problems = video_problems(c, *v)
                if problems:
                    self.video_reasons[(c,) + v] = problems
                else:
                    self.video[c].append(v)
        for c in AUDIO_CONTAINERS:
            self.video[c].append((None,) * len(VIDEO))
        self.audio_reasons = {}
        for c in DOMAINS["container"]:
            if c in VIDEO_CONTAINERS:
                self.audio[c].append((0, None, None))
            for a in itertools.product(CHANNELS[1:], SAMPLE_FMTS, RATES):
                problems = audio_problems(c, *a)
                if problems:
                    self.audio_reasons[(c,) + a] = problems
                else:
                    self.audio[c].append(a)
        # (container, factor, value) -> indices of the parts holding it, for filtering candidates.
        self.index = {}
        for c in DOMAINS["container"]:
            for part, names in ((self.video[c], VIDEO), (self.audio[c], AUDIO)):
                for i, values in enumerate(part):
                    for name, value in zip(names, values):
                        self.index.setdefault((c, name, value), set()).add(i)

    def feasible_pairs(self):
        pairs = set()
        for c in DOMAINS["container"]:
            seen = {}
            for part, names in ((self.video[c], VIDEO), (self.audio[c], AUDIO)):
                values = set()
                for row in part:
                    assigned = [("container", c)] + [(n, v) for n, v in zip(names, row) if v is not None]
                    values.update(assigned[1:])
                    pairs.update(pair_keys(assigned))
                seen[names[0]] = values
            pairs.update(pair_keys_across(seen["codec"], seen["channels"]))
        return pairs


def pair_key(a, b):
    return (a, b) if FACTORS.index(a[0]) < FACTORS.index(b[0]) else (b, a)


def pair_keys(assigned):
    return [pair_key(a, b) for a, b in itertools.combinations(assigned, 2)]


def pair_keys_across(left, right):
    return [pair_key(a, b) for a in left for b in right]


def all_pairs():
    values = [(f, v) for f in FACTORS for v in DOMAINS[f]]
    return {pair_key(a, b) for a, b in itertools.combinations(values, 2) if a[0] != b[0]}


def not_applicable(pair):
    """Pairs excluded by construction: video factors with audio-only containers, sound factors with no sound."""
    (fa, _), (fb, _) = pair
    d = dict(pair)
    if d.get("container") in AUDIO_CONTAINERS and (fa in VIDEO or fb in VIDEO):
        return True
    if d.get("channels") == 0 and (fa in ("sample_fmt", "sample_rate") or fb in ("sample_fmt", "sample_rate")):
        return True
    return d.get("channels") == 0 and d.get("container") in AUDIO_CONTAINERS


def impossible_reasons(space, impossible):
    """For each impossible pair, why: the fewest rules that together rule out every configuration holding it,
    each with the containers where it applies."""
    configs = {p: {} for p in impossible}   # pair -> container -> [problems of each configuration there]
    for part, names in ((space.video_reasons, ["container"] + VIDEO), (space.audio_reasons, ["container"] + AUDIO)):
        for config, problems in part.items():
            for p in pair_keys(list(zip(names, config))):
                if p in configs:
                    configs[p].setdefault(config[0], []).append(problems)
    out = {}
    for p in impossible:
        if not configs[p]:
            out[p] = "no container holds both"
            continue
        where = {}
        for c, lists in configs[p].items():
            for reason in smallest_cover(lists):
                where.setdefault(reason, []).append(c)
        out[p] = "; ".join(r if len(cs) == len(configs[p]) else f"{r} ({', '.join(cs)})" for r, cs in sorted(where.items()))
    return out


def smallest_cover(problem_lists):
    """Greedy set cover: a few reasons such that every configuration fails for at least one of them."""
    left, chosen = list(problem_lists), []
    while left:
        counts = {}
        for problems in left:
            for r in problems:
                counts[r] = counts.get(r, 0) + 1
        # Reasons tied for most configurations all hold there (a container whose every codec fails says so).
        top = max(counts.values())
        best = sorted(r for r in counts if counts[r] == top)
        chosen += best
        left = [problems for problems in left if not set(best) & set(problems)]
    return chosen


def cover(space, rng, trials=4):
    """Greedy rows until every feasible pair is covered: returns rows as factor dicts."""
    uncovered = space.feasible_pairs()
    rows = []
    while uncovered:
        best = None
        ordered = sorted(uncovered)
        for _ in range(trials):
            row, gain = build_row(space, rng, uncovered, rng.choice(ordered))
            if best is None or gain > best[1]:
                best = (row, gain)
        row = best[0]
        uncovered -= set(pair_keys([(f, v) for f, v in row.items() if v is not None]))
        rows.append(row)
    return rows


def build_row(space, rng, uncovered, seed):
    """One row holding `seed`, each remaining factor set to the feasible value covering most uncovered pairs."""
    # Per candidate container: the indices of video and audio parts still consistent (None = all of them).
    candidates = {c: [None, None] for c in DOMAINS["container"]}
    assigned = {}

    def narrow(factor, value, trial):
        result = {}
        for c, (v, a) in trial.items():
            if factor == "container":
                if c == value:
                    result[c] = [v, a]
                continue
            which = 0 if factor in VIDEO else 1
            allowed = space.index.get((c, factor, value))
            if not allowed:
                continue
            current = [v, a][which]
            narrowed = allowed if current is None else current & allowed
            if narrowed:
                kept = [v, a]
                kept[which] = narrowed
                result[c] = kept
        return result

    for factor, value in seed:
        candidates = narrow(factor, value, candidates)
        assigned[factor] = value
    assert candidates, f"seed pair {seed} is not feasible"
    gain = 1
    remaining = [f for f in FACTORS if f not in assigned]
    rng.shuffle(remaining)
    for factor in remaining:
        def score(value):
            if value is None:
                return 0
            return sum(pair_key((factor, value), (f, v)) in uncovered for f, v in assigned.items() if v is not None)
        values = list(DOMAINS[factor]) + [None]
        rng.shuffle(values)
        for value in sorted(values, key=score, reverse=True):
            trial = narrow(factor, value, candidates)
            if trial:
                gain += score(value)
                candidates, assigned[factor] = trial, value
                break
    return assigned, gain


# --- Turning a row into ffmpeg commands -------------------------------------------------------------------

EXTENSIONS = {"mkv": "mkv", "mpegts": "ts"}
MUXERS = {"mkv": "matroska", "m4a": "ipod"}
LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
AUDIO_ENCODERS = {
    "pcm": lambda fmt: ["-c:a", {"s16": "pcm_s16le", "s32": "pcm_s32le", "flt": "pcm_f32le", "dbl": "pcm_f64le",
                                 "u8": "pcm_u8"}[fmt]],
    "flac": lambda fmt: ["-c:a", "flac", "-sample_fmt", fmt],
    "alac": lambda fmt: ["-c:a", "alac", "-sample_fmt", fmt + "p"],
    "aac": lambda fmt: ["-c:a", "aac", "-b:a", "96k"],
    "mp3": lambda fmt: ["-c:a", "libmp3lame", "-b:a", "64k"],
    "vorbis": lambda fmt: ["-c:a", "libvorbis", "-q:a", "2"],
    "opus": lambda fmt: ["-c:a", "libopus", "-b:a", "64k"],
}
def encoder_pix(codec, pix, container):
    """The -pix_fmt the encoder is given, and the extra arguments that go with it."""
    if pix == "rgb24":
        if codec == "h264":
            return "rgb24", []
        if codec == "rawvideo":
            return ("bgr24" if container == "avi" else "rgb24"), []
        return "gbrp", []
    if pix == "yuvj420p" and codec in ("vp9", "av1", "rawvideo"):
        return "yuv420p", ["-color_range", "pc"]
    if codec == "mjpeg" and pix in ("yuv420p", "yuv422p", "yuv444p"):
        return pix, ["-strict", "-1"]
    return pix, []


def video_encoder(codec, pix):
    return {
        "h264": ["-c:v", "libx264rgb" if pix == "rgb24" else "libx264", "-preset", "ultrafast"],
        "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"],
        "vp8": ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"],
        "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"],
        "av1": ["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-b:v", "300k"],
        "mpeg4": ["-c:v", "mpeg4", "-q:v", "5"],
        "mjpeg": ["-c:v", "mjpeg", "-q:v", "5"],
        "rawvideo": ["-c:v", "rawvideo"],
    }[codec]


def file_name(index, row, audio_codec):
    c = row["container"]
    parts = [f"{index:03d}", c]
    if row["codec"]:
        parts += [row["codec"], row["pix_fmt"], f"{row['width']}x{row['height']}"]
        if row["rotation"]:
            parts.append(f"rot{row['rotation']}")
    if row["channels"]:
        parts += [audio_codec, row["sample_fmt"], f"{row['channels']}ch", f"{row['sample_rate']}Hz"]
    return "_".join(parts) + "." + EXTENSIONS.get(c, c)


def commands(row, audio_codec, path, scratch):
    """The ffmpeg command lines that write `path` (two when a rotation tag needs a remux)."""
    ff = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    inputs, maps, args = [], [], []
    if row["codec"]:
        w, h = row["width"], row["height"]
        # testsrc2 rounds odd sizes down to even, so draw one a pixel larger and crop.
        source = f"testsrc2=s={w + w % 2}x{h + h % 2}:r={FPS}:d={SECONDS}"
        pix, extra = encoder_pix(row["codec"], row["pix_fmt"], row["container"])
        inputs += ["-f", "lavfi", "-i", source]
        maps += ["-map", f"{len(maps) // 2}:v"]
        args += ["-vf", f"format=rgb24,crop={w}:{h}:0:0,format={pix}", "-pix_fmt", pix] + extra
        args += video_encoder(row["codec"], row["pix_fmt"])
    if row["channels"]:
        n, rate = row["channels"], row["sample_rate"]
        tones = "|".join(f"0.3*sin(2*PI*{220 * (i + 1)}*t)" for i in range(n))
        inputs += ["-f", "lavfi", "-i", f"aevalsrc={tones}:s={rate}:c={LAYOUTS[n]}:d={SECONDS}"]
        maps += ["-map", f"{len(maps) // 2}:a"]
        args += AUDIO_ENCODERS[audio_codec](row["sample_fmt"])
    muxer = ["-f", MUXERS.get(row["container"], row["container"])]
    if not row["rotation"]:
        return [ff + inputs + maps + args + muxer + [path]]
    unrotated = os.path.join(scratch, "unrotated_" + os.path.basename(path))
    return [ff + inputs + maps + args + muxer + [unrotated],
            ff + ["-i", unrotated, "-map", "0", "-c", "copy", "-metadata:s:v:0", f"rotate={row['rotation']}"] + muxer + [path]]


def probe_mismatches(row, audio_codec, path):
    """What ffprobe finds in the file that differs from the row (empty when the file is what it claims)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", path],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return [f"ffprobe failed: {out.stderr.strip()[:200]}"]
    streams = json.loads(out.stdout).get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video"]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    problems = []
    if row["codec"]:
        if len(video) != 1:
            return [f"{len(video)} video streams"]
        v = video[0]
        if v.get("codec_name") != row["codec"]:
            problems.append(f"video codec {v.get('codec_name')}")
        if (v.get("width"), v.get("height")) != (row["width"], row["height"]):
            problems.append(f"size {v.get('width')}x{v.get('height')}")
        stored, rng = v.get("pix_fmt"), v.get("color_range")
        pix = row["pix_fmt"]
        if pix == "rgb24":
            ok = stored in ({"bgr24", "rgb24"} if row["codec"] == "rawvideo" else {"gbrp"})
        elif pix == "yuvj420p":
            ok = stored == "yuvj420p" or (stored == "yuv420p" and rng == "pc")
        elif pix == "gray" and row["codec"] == "h264":
            # x264 takes gray as is and writes 4:0:0; FFmpeg's H.264 decoder outputs it as 4:2:0, flat chroma.
            ok = stored in ("gray", "yuvj420p")
        else:
            ok = stored == pix
        if not ok:
            problems.append(f"pixel format {stored} ({rng})")
        rotation = next((int(d.get("rotation", 0)) for d in v.get("side_data_list", []) if "rotation" in d), 0)
        if rotation % 360 not in ({row["rotation"], (360 - row["rotation"]) % 360}):
            problems.append(f"rotation {rotation}")
    elif video:
        problems.append("unexpected video stream")
    if row["channels"]:
        if len(audio) != 1:
            return problems + [f"{len(audio)} audio streams"]
        a = audio[0]
        expected_codec = {"pcm": AUDIO_ENCODERS["pcm"](row["sample_fmt"])[1], "aac": "aac", "mp3": "mp3",
                          "vorbis": "vorbis", "opus": "opus", "flac": "flac", "alac": "alac"}[audio_codec]
        if a.get("codec_name") != expected_codec:
            problems.append(f"audio codec {a.get('codec_name')}")
        if a.get("channels") != row["channels"]:
            problems.append(f"{a.get('channels')} channels")
        if int(a.get("sample_rate", 0)) != row["sample_rate"]:
            problems.append(f"{a.get('sample_rate')} Hz")
        if a.get("sample_fmt", "").rstrip("p") != row["sample_fmt"]:
            problems.append(f"sample format {a.get('sample_fmt')}")
    elif audio:
        problems.append("unexpected audio stream")
    return problems


def expectation(row):
    """What the decoder should do: a picture under MIN_VIDEO_SIDE is no video, so with no sound it is refused."""
    if row["codec"] and min(row["width"], row["height"]) < MIN_VIDEO_SIDE and not row["channels"]:
        return "refused"
    return "ok"


def realize(index, row, audio_codec, out_dir, scratch):
    name = file_name(index, row, audio_codec)
    path = os.path.join(out_dir, name)
    start = time.monotonic()
    error = None
    for command in commands(row, audio_codec, path, scratch):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            error = f"ffmpeg exited {done.returncode}: {done.stderr.strip()[-300:]}"
            break
    problems = [error] if error else probe_mismatches(row, audio_codec, path)
    entry = {"file": name, "factors": row, "audio_codec": audio_codec, "expect": expectation(row),
             "seconds_to_make": round(time.monotonic() - start, 2)}
    if problems:
        entry["generation_problems"] = problems
    else:
        entry["bytes"] = os.path.getsize(path)
    return entry


def pick_audio_codecs(rows, rng):
    """Spreads rows over the codecs each admits: the least used so far wins, so every codec appears."""
    used = {}
    chosen = []
    for row in rows:
        if not row["channels"]:
            chosen.append(None)
            continue
        options = audio_codecs(row["container"], row["channels"], row["sample_fmt"], row["sample_rate"])
        rng.shuffle(options)
        best = min(options, key=lambda c: used.get(c, 0))
        used[best] = used.get(best, 0) + 1
        chosen.append(best)
    return chosen


def smoke_rows():
    """The bounded subset the test suite decodes: the riskiest shapes, every codec, every stored pixel format."""
    def row(container, codec=None, pix=None, w=None, h=None, rot=0, channels=0, fmt=None, rate=None):
        return {"container": container, "codec": codec, "pix_fmt": pix, "width": w, "height": h,
                "rotation": rot if codec else None, "channels": channels, "sample_fmt": fmt, "sample_rate": rate}
    return [
        row("mp4", "h264", "yuv420p", 360, 640, 90, 2, "flt", 44100),       # the phone shape that crashed
        row("mp4", "h264", "yuv420p10le", 480, 854),                          # portrait, 10-bit
        row("mkv", "h264", "yuv444p", 361, 203, 0, 6, "s32", 96000),          # odd sizes, 4:4:4
        row("avi", "h264", "gray", 17, 127, 0, 1, "u8", 8000),                # monochrome, odd, tall
        row("mov", "h264", "rgb24", 200, 720, 270, 2, "s16", 48000),          # RGB (libx264rgb), ALAC
        row("mpegts", "hevc", "yuv420p", 200, 720, 0, 8, "flt", 96000),       # the VP9 crash shape, in HEVC
        row("mkv", "hevc", "yuv422p", 854, 480, 0, 3, "s32", 192000),
        row("mp4", "hevc", "rgb24", 127, 361, 180),
        row("webm", "vp8", "yuv420p", 361, 17, 0, 5, "flt", 22050),
        row("webm", "vp9", "yuv420p", 200, 720, 0, 2, "flt", 48000),         # the VP9 crash shape
        row("mkv", "vp9", "yuv420p10le", 33, 638),
        row("mp4", "vp9", "yuv444p", 361, 203, 90, 1, "flt", 11025),
        row("mkv", "av1", "gray", 361, 17),
        row("mp4", "av1", "yuvj420p", 638, 360, 0, 2, "flt", 16000),
        row("webm", "av1", "yuv420p", 1, 2),                                  # refused: too small, no sound
        row("avi", "mpeg4", "yuv420p", 361, 203, 0, 1, "flt", 22050),
        row("avi", "mjpeg", "yuvj420p", 17, 33, 0, 2, "s16", 44100),
        row("mov", "mjpeg", "yuv422p", 720, 1080, 90, 4, "dbl", 8000),
        row("avi", "rawvideo", "nv12", 361, 203, 0, 8, "flt", 16000),
        row("mkv", "rawvideo", "nv12", 17, 16),
        row("avi", "rawvideo", "rgb24", 33, 127),
        row("mov", "rawvideo", "rgb24", 361, 17, 90, 2, "s32", 192000),
        row("mkv", "rawvideo", "gray", 15, 200, 0, 1, "s16", 16000),          # picture too small, sound decodes
        row("wav", channels=3, fmt="u8", rate=8000),
        row("flac", channels=8, fmt="s32", rate=192000),
        row("ogg", channels=5, fmt="flt", rate=48000),
        row("m4a", channels=7, fmt="s32", rate=96000),
    ]


def check_rows(rows):
    for row in rows:
        if row["codec"]:
            problems = video_problems(row["container"], row["codec"], row["pix_fmt"], row["width"], row["height"], row["rotation"])
            assert not problems, f"{row}: {problems}"
        if row["channels"]:
            assert audio_codecs(row["container"], row["channels"], row["sample_fmt"], row["sample_rate"]), row


def clear_previous(out):
    """Removes what an earlier run wrote into `out` (the files its manifest lists, and their decode results);
    any other file stops the run."""
    os.makedirs(out, exist_ok=True)
    manifest = os.path.join(out, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            for entry in json.load(f)["files"]:
                if os.path.exists(os.path.join(out, entry["file"])):
                    os.remove(os.path.join(out, entry["file"]))
        os.remove(manifest)
        # decode_sweep.py's results and logs about those files.
        for name in os.listdir(out):
            path = os.path.join(out, name)
            if name.startswith("results-") and name.endswith(".json"):
                os.remove(path)
            elif name.startswith("logs-") and os.path.isdir(path):
                shutil.rmtree(path)
    if os.listdir(out):
        sys.exit(f"generate.py: {out} holds files no earlier sweep wrote; give an empty or new folder")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write the files and manifest.json into (created; emptied of media first)")
    parser.add_argument("--subset", choices=["smoke"], help="write the test suite's fixed rows instead of the sweep")
    parser.add_argument("--plan-only", action="store_true", help="print the coverage without encoding")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    started = time.monotonic()
    coverage = None
    if args.subset:
        rows = smoke_rows()
        check_rows(rows)
    else:
        space = Space()
        feasible = space.feasible_pairs()
        universe = all_pairs()
        na = {p for p in universe if not_applicable(p)}
        impossible = universe - feasible - na
        reasons = impossible_reasons(space, impossible)
        rows = cover(space, rng)
        covered = set()
        for row in rows:
            covered |= set(pair_keys([(f, v) for f, v in row.items() if v is not None]))
        assert feasible <= covered
        coverage = {
            "pairs": len(universe), "not_applicable": len(na), "impossible": len(impossible),
            "encodable": len(feasible), "covered": len(feasible & covered), "rows": len(rows),
            "impossible_pairs": [{"pair": [list(a), list(b)], "reason": reasons[(a, b)]} for a, b in sorted(impossible, key=str)],
        }
        print(f"pairs {len(universe)}: {len(na)} not applicable, {len(impossible)} impossible, "
              f"{len(feasible)} encodable, all covered by {len(rows)} rows "
              f"(planned in {time.monotonic() - started:.1f} s)", file=sys.stderr)
    audio = pick_audio_codecs(rows, rng)
    if args.plan_only:
        for p in (coverage or {}).get("impossible_pairs", []):
            print(f"impossible {p['pair'][0]} + {p['pair'][1]}: {p['reason']}")
        return 0

    clear_previous(args.out)
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    scratch = tempfile.mkdtemp(prefix="media-sweep-")
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            entries = list(pool.map(lambda i: realize(i, rows[i], audio[i], args.out, scratch), range(len(rows))))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    failed = [e for e in entries if "generation_problems" in e]
    manifest = {"generator": "bench/media-sweep/generate.py", "ffmpeg": version, "seed": args.seed,
                "subset": args.subset, "seconds": round(time.monotonic() - started, 1), "coverage": coverage,
                "files": entries}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    total = sum(e.get("bytes", 0) for e in entries)
    print(f"wrote {len(entries) - len(failed)} files ({total / 1e6:.1f} MB) in {time.monotonic() - started:.1f} s "
          f"to {args.out}; {len(failed)} did not come out as planned", file=sys.stderr)
    for e in failed:
        print(f"  {e['file']}: {'; '.join(e['generation_problems'])}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
