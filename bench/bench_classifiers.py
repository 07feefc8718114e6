"""Training throughput of each classifier at its input size on this device, plus one digits run; prints JSON.

    python bench/bench_classifiers.py [--device auto] [--steps 5]

Random uint8 tensors go through the same train_classifier loop as real runs (augmentation,
resize, autocast on CUDA), so the numbers include the data path, not just the model.
"""
import argparse
import json
import time

import torch

from engine.data.loaders import load_digits_dataset
from engine.classifiers.networks import CLASSIFIERS
from engine.device.runtime import device_name, resolve_device
from engine.catalog.defaults import default_recipe
from engine.classifiers.train import train_classifier


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cpu = device.type == "cpu"
    results = {}
    for name, (stored, size) in CLASSIFIERS.items():
        channels = 1 if name == "smallcnn" else 3
        batch = {"smallcnn": 64, "resnet110": 128, "resnet50": 192, "vit-b32": 192}[name]
        if cpu and size == 224:
            batch = 16  # a 224x224 batch of 192 takes minutes per step on a laptop-class CPU
        n = batch * 4
        x = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, device=device)
        y = torch.randint(0, 10, (n,), device=device)
        recipe = default_recipe(name, "bench", n, n, n).with_overrides(
            {"iterations": str(args.steps), "batch_size": str(batch)})
        train_classifier(name, x, y, x[:batch], y[:batch], 10, recipe.with_overrides({"iterations": "2"}), 0,
                         device, args.compile)  # warm-up (and compilation)
        result = train_classifier(name, x, y, x[:batch], y[:batch], 10, recipe, 0, device, args.compile)
        results[stored] = {"input": f"{channels}x{size}x{size}", "batch": batch, "steps": args.steps,
                           "train_images_per_s": round(result.images_per_second, 1)}
    ds = load_digits_dataset()
    tx = torch.from_numpy(ds.train_x).permute(0, 3, 1, 2).contiguous().to(device)
    ex = torch.from_numpy(ds.test_x).permute(0, 3, 1, 2).contiguous().to(device)
    ty, ey = torch.from_numpy(ds.train_y).to(device), torch.from_numpy(ds.test_y).to(device)
    start = time.perf_counter()
    r = train_classifier("smallcnn", tx[:100], ty[:100], ex, ey, 10,
                         default_recipe("smallcnn", "digits", 100, 100, 800, traditional="crop"), 0, device)
    digits = {"n_train": 100, "wall_s": round(time.perf_counter() - start, 2), "top1": round(r.top1, 2)}
    print(json.dumps({"benchmark": "classifier training throughput", "device": device_name(device),
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "classifiers": results,
                      "digits_run": digits}, indent=2))


if __name__ == "__main__":
    main()
