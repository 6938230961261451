"""DVC push throughput vs a plain ``minio`` SDK upload of the same files, to a real S3 server.

Files: a frame-folder-like tree (many small PNG-sized files) and a few large files, the two shapes
a dataset version has. DVC pushes with bounded jobs (the registry's setting); the minio baseline
uploads sequentially and with a thread pool of the same width. Writes benchmarks/results/dvc_push.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from vigil.io.store import S3Store  # noqa: E402
from vigil.testing.s3 import seaweedfs_s3  # noqa: E402

JOBS = 4


def make_tree(root: Path, n_small: int, small_kib: int, n_large: int, large_mib: int) -> int:
    rng = os.urandom
    (root / "frames").mkdir(parents=True)
    total = 0
    for i in range(n_small):
        data = rng(small_kib * 1024)
        (root / "frames" / f"{i}.png").write_bytes(data)
        total += len(data)
    for i in range(n_large):
        data = rng(large_mib * 1024 * 1024)
        (root / f"large-{i}.bin").write_bytes(data)
        total += len(data)
    return total


def dvc(repo: Path, *args: str, env: dict | None = None) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=True, capture_output=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=400, help="number of small files")
    parser.add_argument("--small-kib", type=int, default=40)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/dvc_push.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp, seaweedfs_s3() as s3:
        tmp = Path(tmp)
        repo = tmp / "repo"
        data = repo / "data"
        total = make_tree(data, args.small, args.small_kib, args.large, args.large_mib)
        files = sorted(p for p in data.rglob("*") if p.is_file())
        store = S3Store(s3.endpoint, s3.access_key, s3.secret_key, "bench")

        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        dvc(repo, "init", "-q")
        dvc(repo, "remote", "add", "-d", "store", "s3://bench/dvc")
        dvc(repo, "remote", "modify", "store", "endpointurl", s3.url)
        dvc(repo, "remote", "modify", "--local", "store", "access_key_id", s3.access_key)
        dvc(repo, "remote", "modify", "--local", "store", "secret_access_key", s3.secret_key)
        dvc(repo, "add", "data")
        started = time.perf_counter()
        dvc(repo, "status", "-q")  # a no-op command: the CLI's fixed start-up cost
        startup_s = time.perf_counter() - started
        started = time.perf_counter()
        dvc(repo, "push", "-j", str(JOBS))
        dvc_s = time.perf_counter() - started

        started = time.perf_counter()
        for p in files:
            store.client.fput_object("bench", f"plain-seq/{p.relative_to(data)}", str(p))
        seq_s = time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(JOBS) as pool:
            list(pool.map(lambda p: store.client.fput_object("bench", f"plain-par/{p.relative_to(data)}", str(p)), files))
        par_s = time.perf_counter() - started

    mb = total / 1e6
    doc = {
        "benchmark": "dvc_push", "machine": machine(), "server": "SeaweedFS weed mini on loopback",
        "files": len(files), "megabytes": round(mb, 1), "jobs": JOBS,
        "dvc_push_s": round(dvc_s, 2), "dvc_push_mb_per_s": round(mb / dvc_s, 1),
        "minio_sequential_s": round(seq_s, 2), "minio_sequential_mb_per_s": round(mb / seq_s, 1),
        "minio_parallel_s": round(par_s, 2), "minio_parallel_mb_per_s": round(mb / par_s, 1),
        "dvc_cli_startup_s": round(startup_s, 2),
        "dvc_push_minus_startup_mb_per_s": round(mb / max(dvc_s - startup_s, 1e-9), 1),
        "dvc_vs_minio_sequential": round(seq_s / dvc_s, 2),
        "dvc_vs_minio_parallel": round(par_s / dvc_s, 2),
        "note": "ratio > 1 means DVC push is faster; DVC also hashes and builds its cache before pushing (not timed)",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
