"""The ImageNet decode-once cache: first load (decode every JPEG) against a cached load, in one run so
the numbers are a ratio on the same machine; prints JSON.

    python bench/bench_imagenet_cache.py --per-class 40 --size 224

Writes an ImageNet-10 folder of ImageNet-sized JPEGs (500x375 noise-and-gradient images, 100-150 kB
each) into a temporary folder, loads it twice at --size, and reports both wall times, images a
second, their ratio and the cache's bytes. Nothing outside the temporary folder is touched.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def write_folder(root: Path, per_class: int) -> int:
    from PIL import Image
    from engine.data.imagenet import class_list
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 500, dtype=np.float32)[None, :, None]
    n = 0
    for split, count in (("train", per_class), ("val", max(1, per_class // 10))):
        for wnid, _ in class_list("imagenet10"):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for k in range(count):
                img = np.clip(ramp + rng.normal(0, 30, (375, 500, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{wnid}_{k}.JPEG", quality=90)
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    from rich.console import Console
    from engine.data.imagenet import CACHE_DIR, load_imagenet_subset
    with tempfile.TemporaryDirectory(prefix="equiv-imagenet-") as tmp:
        root = Path(tmp)
        n = write_folder(root, args.per_class)
        quiet = Console(file=open("/dev/null", "w"))
        t0 = time.perf_counter()
        first = load_imagenet_subset("imagenet10", root, args.size, console=quiet)
        t1 = time.perf_counter()
        again = load_imagenet_subset("imagenet10", root, args.size, console=quiet)
        _ = int(np.asarray(again.train_x).sum() % 7)   # read every cached byte, as training does
        t2 = time.perf_counter()
        cache_bytes = sum(p.stat().st_size for p in (root / CACHE_DIR).rglob("*") if p.is_file())
        assert np.array_equal(np.asarray(first.test_x), np.asarray(again.test_x))
    print(json.dumps({"images": n, "size": args.size, "first_load_s": round(t1 - t0, 3),
                      "cached_load_s": round(t2 - t1, 3), "first_images_per_s": round(n / (t1 - t0), 1),
                      "speedup_cached_over_first": round((t1 - t0) / (t2 - t1), 1), "cache_bytes": cache_bytes,
                      "note": "CPU wall times on a shared machine: read the ratio, not the seconds"}))


if __name__ == "__main__":
    main()
