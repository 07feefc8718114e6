"""EDM training images/s and sampling seconds per image (18 Heun steps) per preset; prints JSON.

    python bench/bench_edm.py [--device auto] [--steps 5]

The paper's figure to beat: 0.06 s per 32x32 image on an RTX A4500 at batch 100.
"""
import argparse
import json
import time

import torch

from engine.generators.edm import EDMLoss, EDMPrecond, edm_sampler
from engine.device.runtime import device_name, resolve_device

SHAPES = {"tiny": (8, 1, 128), "small": (32, 3, 128), "cifar": (32, 3, 128)}  # resolution, channels, train batch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sample-batch", type=int, default=100)
    args = parser.parse_args()
    device = resolve_device(args.device)
    out = {}
    for preset, (res, ch, batch) in SHAPES.items():
        if device.type == "cpu" and preset != "tiny":
            batch = 16
        torch.manual_seed(0)
        net = EDMPrecond(res, ch, 10, preset).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        x = torch.randn(batch, ch, res, res, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        loss_fn = EDMLoss()

        def step():
            loss = loss_fn(net, x, y).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        step()
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        train_ips = args.steps * batch / (time.perf_counter() - start)
        sample_batch = args.sample_batch if (device.type == "cuda" or preset == "tiny") else 4
        net.eval()
        with torch.no_grad():
            z = torch.randn(sample_batch, ch, res, res, device=device)
            labels = torch.arange(sample_batch, device=device) % 10
            start = time.perf_counter()
            edm_sampler(net, z, labels)
            sync()
            s_per_image = (time.perf_counter() - start) / sample_batch
        out[preset] = {"resolution": res, "channels": ch, "parameters_M": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
                       "train_batch": batch, "train_images_per_s": round(train_ips, 1),
                       "sample_batch": sample_batch, "sample_s_per_image": round(s_per_image, 5)}
    print(json.dumps({"benchmark": "EDM training and 18-step Heun sampling", "device": device_name(device),
                      "threads": torch.get_num_threads(), "paper_reference_s_per_image": 0.06, "presets": out},
                     indent=2))


if __name__ == "__main__":
    main()
