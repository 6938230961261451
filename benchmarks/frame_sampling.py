"""Benchmark: Vigil's frame sampler against the two naive ways of taking N frames from a clip.

Why: sampling frames is the per-clip cost of every ingest, and the two obvious implementations are
each slow on one kind of clip. Decoding (and converting) every frame wastes work on everything;
seeking per frame is fine with frequent keyframes but re-decodes the whole GOP for every frame when
a clip has one keyframe. Vigil picks a plan per clip (see ``vigil.io.media``); this script shows
what that buys on 720p clips with a 1 s GOP and with a single keyframe, and on zoo-sized clips.

    python benchmarks/frame_sampling.py --out benchmarks/results/frame_sampling.json [--quick]

Clips are generated with the ffmpeg binary from imageio-ffmpeg (``testsrc2`` plus temporal noise,
so the encoder has real work) and with ``vigil.io.encode.write_video`` for the zoo-like case.
Methods, each timed from the file path to 16 RGB frames in memory or on disk:

* ``vigil``: ``sample_frames(..., strategy="auto")``, the whole call: probe, packet index, decode,
  scale, and writing 16 PNGs (the naive methods write nothing, so this is the stricter number).
  ``vigil_decode_s`` is the decode-and-convert part alone (``DecodeStats.seconds``).
* ``naive_decode_all``: PyAV defaults, ``frame.to_ndarray(format="rgb24")`` for every frame,
  keep 16.
* ``naive_decode_all_threaded``: the same with ``thread_type="AUTO"`` (frame threading), to show
  how much of the gain is threading alone.
* ``naive_seek``: per wanted frame, ``container.seek`` to it (backward to a keyframe) and decode
  forward until it comes out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np

from vigil.io.encode import write_video
from vigil.io.media.frame_folder import sample_frames
from vigil.io.media.probing import probe

N_FRAMES = 16


def ffmpeg(*args: str) -> None:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args]
    subprocess.run(command, check=True)


def make_720p(path: Path, seconds: float, gop: int | None, preset: str) -> Path:
    """10 s of testsrc2 at 1280x720/30 with temporal noise, libx264 yuv420p. ``gop=None`` forces a
    single keyframe for the whole clip; otherwise a keyframe every ``gop`` frames."""
    keyint = ["-g", "1000", "-keyint_min", "1000"] if gop is None else ["-g", str(gop), "-keyint_min", str(gop)]
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
        "-vf", "noise=alls=10:allf=t",
        "-c:v", "libx264", "-preset", preset, "-crf", "23", "-pix_fmt", "yuv420p",
        *keyint, "-sc_threshold", "0", str(path),
    )
    return path


def make_zoo_clip(path: Path, seed: int) -> Path:
    """A zoo-sized clip: 160x120, 24 frames at 24 fps, x264 defaults via write_video. Like the
    zoo's procedural scenes: a panning tiled background, a moving square, mild sensor noise."""
    rng = np.random.default_rng(seed)
    background = (40 + 180 * rng.random((6, 16, 3))).repeat(20, axis=0).repeat(20, axis=1)  # 120x320
    frames = []
    for t in range(24):
        frame = background[:, 4 * t : 4 * t + 160].copy()
        frame[50:74, 5 * t : 5 * t + 24] = (230, 50, 50)
        frame += rng.normal(0, 3, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return write_video(np.stack(frames), 24.0, path)


def wanted_indices(frame_count: int, n: int = N_FRAMES) -> set[int]:
    """Frame numbers at the centres of n equal segments (what the sampler also picks)."""
    return {min(frame_count - 1, int((i + 0.5) * frame_count / n)) for i in range(n)}


def naive_decode_all(path: Path, threaded: bool = False) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threaded:
            stream.codec_context.thread_type = "AUTO"
        wanted = wanted_indices(stream.frames)
        kept = []
        for number, frame in enumerate(container.decode(stream)):
            rgb = frame.to_ndarray(format="rgb24")  # naive: convert every frame
            if number in wanted:
                kept.append(rgb)
    return len(kept)


def naive_seek(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        step = 1 / (float(stream.average_rate) * stream.time_base)
        kept = []
        for number in sorted(wanted_indices(stream.frames)):
            target = int(round(number * step)) + (stream.start_time or 0)
            container.seek(target, stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts >= target:
                    kept.append(frame.to_ndarray(format="rgb24"))
                    break
    return len(kept)


def vigil_sample(path: Path, out_dir: Path, caps: tuple[int, int], prefer_keyframes: bool = False) -> dict:
    result = sample_frames(path, out_dir, n_frames=N_FRAMES, max_side=caps[0], max_pixels=caps[1],
                           prefer_keyframes=prefer_keyframes)
    return {"strategy": result.strategy, "frames": len(result.frame_paths), "decode_s": result.stats.seconds,
            "stats": result.stats.__dict__}


def timed(fn, reps: int) -> tuple[float, list[float], object]:
    times, value = [], None
    fn()  # warm-up: page cache, codec init
    for _ in range(reps):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, value


def bench_case(name: str, description: str, path: Path, reps: int, work: Path, caps: tuple[int, int]) -> dict:
    facts = probe(path)
    out = work / f"frames_{name}"
    methods = {}
    for method, prefer in (("vigil", False), ("vigil_prefer_keyframes", True)):
        median, runs, info = timed(lambda: vigil_sample(path, out, caps, prefer), reps)
        decode_median = statistics.median([vigil_sample(path, out, caps, prefer)["decode_s"] for _ in range(reps)])
        methods[method] = {"median_s": median, "runs_s": runs, "strategy": info["strategy"], "frames": info["frames"],
                           "stats": info["stats"], "decode_median_s": decode_median}
    vigil_median, decode_median = methods["vigil"]["median_s"], methods["vigil"]["decode_median_s"]
    for method, fn in [
        ("naive_decode_all", lambda: naive_decode_all(path)),
        ("naive_decode_all_threaded", lambda: naive_decode_all(path, threaded=True)),
        ("naive_seek", lambda: naive_seek(path)),
    ]:
        median, runs, frames = timed(fn, reps)
        methods[method] = {"median_s": median, "runs_s": runs, "frames": frames}
    case = {
        "clip": name,
        "description": description,
        "width": facts.width, "height": facts.height, "fps": facts.fps,
        "frame_count": facts.frame_count, "duration_s": facts.duration_s,
        "keyframe_interval_s": facts.keyframe_interval_s, "file_bytes": facts.size_bytes,
        "methods": methods,
        "ratios": {
            f"{method}_over_vigil": methods[method]["median_s"] / vigil_median
            for method in ("naive_decode_all", "naive_decode_all_threaded", "naive_seek")
        },
        "ratios_prefer_keyframes": {
            f"{method}_over_vigil_prefer_keyframes": methods[method]["median_s"] / methods["vigil_prefer_keyframes"]["median_s"]
            for method in ("naive_decode_all", "naive_decode_all_threaded", "naive_seek")
        },
        "ratios_decode_only": {
            f"{method}_over_vigil_decode": methods[method]["median_s"] / decode_median
            for method in ("naive_decode_all", "naive_decode_all_threaded", "naive_seek")
        },
    }
    print(f"{name:>9}:" + "".join(f" | {m} {methods[m]['median_s'] * 1000:.0f} ms"
                                  + (f" ({methods[m]['strategy']})" if "strategy" in methods[m] else "") for m in methods), flush=True)
    return case


def machine_facts() -> dict:
    ffmpeg_version = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-version"], capture_output=True, text=True)
    return {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "av": av.__version__,
        "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "numpy": np.__version__,
        "ffmpeg_binary": ffmpeg_version.stdout.split("\n")[0],
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/frame_sampling.json"))
    parser.add_argument("--quick", action="store_true", help="3 s clips, veryfast preset, 3 repetitions")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per method (median reported)")
    parser.add_argument("--max-side", type=int, default=224, help="frame cap (params.yaml ingest.max_side)")
    parser.add_argument("--max-pixels", type=int, default=224 * 224, help="frame cap (params.yaml ingest.max_pixels)")
    args = parser.parse_args()
    seconds, preset, reps = (3.0, "veryfast", 3) if args.quick else (10.0, "medium", 5)
    reps = args.reps or reps
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    try:
        clips = {
            "gop_1s": (make_720p(work / "gop_1s.mp4", seconds, 30, preset),
                       f"{seconds:g} s 1280x720@30 libx264 {preset}, keyframe every 30 frames (1 s)"),
            "long_gop": (make_720p(work / "long_gop.mp4", seconds, None, preset),
                         f"{seconds:g} s 1280x720@30 libx264 {preset}, one keyframe for the whole clip"),
        }
        zoo = [make_zoo_clip(work / f"zoo_{i}.mp4", seed=i) for i in range(3)]
        print(f"clips made in {time.perf_counter() - started:.1f} s in {work}", flush=True)
        caps = (args.max_side, args.max_pixels)
        cases = [bench_case(name, description, path, reps, work, caps) for name, (path, description) in clips.items()]
        cases += [bench_case(f"zoo_{i}", "zoo-like: 160x120, 24 frames, x264 defaults via write_video", p, reps, work, caps)
                  for i, p in enumerate(zoo)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by_name = {case["clip"]: case for case in cases}
    targets = {
        "gop_1s_vigil_at_least_5x_faster_than_decode_all": by_name["gop_1s"]["ratios"]["naive_decode_all_over_vigil"] >= 5,
        "long_gop_vigil_at_least_2x_faster_than_decode_all": by_name["long_gop"]["ratios"]["naive_decode_all_over_vigil"] >= 2,
        "gop_1s_vigil_prefer_keyframes_at_least_5x_faster_than_decode_all": (
            by_name["gop_1s"]["ratios_prefer_keyframes"]["naive_decode_all_over_vigil_prefer_keyframes"] >= 5
        ),
        "long_gop_naive_seek_slower_than_decode_all": (
            by_name["long_gop"]["methods"]["naive_seek"]["median_s"]
            > by_name["long_gop"]["methods"]["naive_decode_all"]["median_s"]
        ),
    }
    report = {
        "benchmark": "frame_sampling",
        "n_frames": N_FRAMES,
        "quick": args.quick,
        "repetitions": reps,
        "frame_caps": {"max_side": args.max_side, "max_pixels": args.max_pixels},
        "machine": machine_facts(),
        "cases": cases,
        "targets": targets,
        "wall_s": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(targets, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
