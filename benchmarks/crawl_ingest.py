"""Crawl + ingest throughput against the local zoo gallery at crawl concurrency 1, 4 and 16.

The obvious alternative is a sequential crawler (concurrency 1); the ratio says what the async
crawler's concurrency buys on this machine. Media is pre-rendered so that the gallery's rendering
does not count. Writes benchmarks/results/crawl_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from vigil.config.params import SourceParams, ZooParams, parse_params  # noqa: E402
from vigil.io.store import LocalStore  # noqa: E402
from vigil.jobs.crawl import embedded_gallery, run_crawl  # noqa: E402
from vigil.jobs.ingest import ingest  # noqa: E402
from vigil.jobs.runtime import runtime_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=8, help="pairs per generator (clips = 2 x pairs x generators)")
    parser.add_argument("--out", default="benchmarks/results/crawl_ingest.json")
    args = parser.parse_args()

    zoo = ZooParams(pairs_per_generator=args.pairs)
    results = []
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        tmp = Path(tmp)
        with embedded_gallery(zoo, tmp / "gallery") as url:
            import httpx

            from vigil.zoo.catalog import build_catalog, zoo_config

            # pre-render every clip: the gallery renders lazily and that is not what we measure
            for item in build_catalog(zoo_config(zoo)):
                httpx.get(f"{url}/media/{item.item_id}.mp4", timeout=60).raise_for_status()
            for concurrency in (1, 4, 16):
                params = parse_params({
                    "zoo": zoo.model_dump(mode="json"),
                    "crawl": {"concurrency": concurrency, "per_domain_concurrency": concurrency,
                              "per_domain_rps": 1000.0,
                              "sources": [{"name": "zoo", "url": url, "allow_private": True}]},
                })
                work = tmp / f"c{concurrency}"
                store = LocalStore(work / "store")
                sources = (SourceParams(name="zoo", url=url, allow_private=True),)
                started = time.perf_counter()
                report = run_crawl(runtime_for(work, params, store), sources)
                crawl_s = time.perf_counter() - started
                started = time.perf_counter()
                ingested = ingest(runtime_for(work, params, store))
                ingest_s = time.perf_counter() - started
                clips = report.stored
                results.append({
                    "concurrency": concurrency, "clips": clips, "crawl_s": round(crawl_s, 3),
                    "crawl_clips_per_s": round(clips / crawl_s, 2),
                    "ingest_s": round(ingest_s, 3), "ingest_status": ingested.status,
                    "crawl_plus_ingest_clips_per_s": round(clips / (crawl_s + ingest_s), 2),
                })
                print(results[-1], flush=True)
    base = results[0]["crawl_clips_per_s"]
    for r in results:
        r["crawl_speedup_vs_concurrency_1"] = round(r["crawl_clips_per_s"] / base, 2)
    doc = {"benchmark": "crawl_ingest", "machine": machine(), "results": results,
           "note": "ingest runs probe+sampling on 2 workers, then GX validation and a DVC push of the version"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
