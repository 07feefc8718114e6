"""DiT and VAE training images/s and sampling seconds per image per preset, next to EDM's; prints JSON.

    python bench/bench_dit.py [--device auto] [--presets tiny,S/2,XL/2] [--resolution 256] [--steps 3]

Sampling is timed over a few DDPM steps with classifier-free guidance (two network evaluations
a step, batched) and scaled to the paper's 250, plus one VAE decode. On a GPU both run under
bf16 autocast as training and sampling do; XL/2 trains with gradient checkpointing. The paper's
Tab. 8 figure for DiT: 3.5 s per image on an RTX A6000 at batch 1 (250 steps, 9,000 MB).
CPU timings are only comparable with each other, within one run.
"""
import argparse
import json
import time

import torch

from engine.generators.dit import PRESETS, DiffusionLoss, DiT, sample_latents, image_generators
from engine.generators.dit_train import PRESET_TRAINING
from engine.generators.edm import EDMLoss, EDMPrecond, edm_sampler
from engine.generators.vae import PRESET_TRAINING as PRESET_TRAINING_VAE, build_vae, downsampling, vae_loss
from engine.device.runtime import device_name, resolve_device


def timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def train_step(net, loss_fn, x, y, opt, autocast):
    def step():
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--presets", default=None, help="DiT presets (default: tiny on CPU, all on GPU)")
    parser.add_argument("--resolution", type=int, default=256, help="image size for the f8-VAE presets")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps and sampling steps")
    parser.add_argument("--train-batch", type=int, default=None, help="default: the preset's (8 on CPU)")
    parser.add_argument("--sample-batch", type=int, default=None,
                        help="default: 1 (the paper's) on GPU; on CPU 100 for tiny (as bench_edm), else 2")
    args = parser.parse_args()
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    presets = args.presets.split(",") if args.presets else (list(PRESETS) if gpu else ["tiny"])
    out = {}
    for preset in presets:
        recipe = PRESET_TRAINING[preset]
        res, ch, classes = (8, 1, 10) if preset == "tiny" else (args.resolution, 3, 100)
        vae_name = recipe["vae"]
        latent = res // downsampling(vae_name)
        torch.manual_seed(0)
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        vae = build_vae(ch, vae_name).to(device)
        vae_batch = 8 if not gpu and preset != "tiny" else PRESET_TRAINING_VAE[vae_name]["batch_size"]
        x = torch.randn(vae_batch, ch, res, res, device=device)
        opt = torch.optim.AdamW(vae.parameters(), lr=1e-4)
        vae_s = timed(train_step(vae, lambda a, b: vae_loss(vae, a, 1e-4, None)[0], x, None, opt, gpu),
                      args.steps, sync)
        vae.eval().requires_grad_(False)
        del opt
        net = DiT(latent, 4, classes, preset).to(device)
        if recipe.get("grad_checkpointing"):
            net.model.enable_gradient_checkpointing()
        batch = args.train_batch or (recipe.get("batch_size", 256) if gpu or preset == "tiny" else 8)
        z = torch.randn(batch, 4, latent, latent, device=device)
        y = torch.randint(0, classes, (batch,), device=device)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        dit_loss = DiffusionLoss()
        dit_s = timed(train_step(net, lambda a, b: dit_loss(net, a, b).mean(), z, y, opt, gpu), args.steps, sync)
        train_peak = torch.cuda.max_memory_allocated() / 2 ** 20 if gpu else None
        del opt
        net.eval().requires_grad_(False)
        sample_batch = args.sample_batch or (1 if gpu else 100 if preset == "tiny" else 2)
        labels = torch.arange(sample_batch, device=device) % classes
        if gpu:
            torch.cuda.reset_peak_memory_stats()

        def sample():
            zs = sample_latents(net, labels, image_generators(0, 0, sample_batch, device), 4.0, args.steps, "ddpm", gpu)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
                vae.decode(zs)
        per_step = timed(sample, 1, sync)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
            decode_s = timed(lambda: vae.decode(torch.randn(sample_batch, 4, latent, latent, device=device)), 1, sync)
        s_per_image_250 = ((per_step - decode_s) / args.steps * 250 + decode_s) / sample_batch
        out[preset] = {
            "image": [res, res, ch], "latent": [latent, latent, 4], "vae": vae_name,
            "dit_parameters_M": round(sum(p.numel() for p in net.parameters()) / 1e6, 1),
            "vae_parameters_M": round(sum(p.numel() for p in vae.parameters()) / 1e6, 1),
            "vae_train_batch": vae_batch, "vae_train_images_per_s": round(vae_batch / vae_s, 1),
            "dit_train_batch": batch, "dit_train_images_per_s": round(batch / dit_s, 1),
            "train_peak_MiB": round(train_peak) if train_peak else None,
            "sample_batch": sample_batch, "sample_s_per_image_250_steps_cfg": round(s_per_image_250, 4),
            "sample_peak_MiB": round(torch.cuda.max_memory_allocated() / 2 ** 20) if gpu else None}
    edm = {}
    for preset, (res, ch) in {"tiny": (8, 1), "cifar": (32, 3)}.items():
        if not gpu and preset != "tiny":
            continue
        net = EDMPrecond(res, ch, 10, preset).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        x = torch.randn(128, ch, res, res, device=device)
        yy = torch.randint(0, 10, (128,), device=device)
        s = timed(train_step(net, lambda a, b: EDMLoss()(net, a, b).mean(), x, yy, opt, False), args.steps, sync)
        net.eval()
        zs = torch.randn(100, ch, res, res, device=device)
        with torch.no_grad():
            sample_s = timed(lambda: edm_sampler(net, zs, torch.arange(100, device=device) % 10), 1, sync)
        edm[preset] = {"train_images_per_s": round(128 / s, 1), "sample_s_per_image_18_steps": round(sample_s / 100, 5)}
    print(json.dumps({"benchmark": "VAE + DiT training and 250-step DDPM sampling with CFG, next to EDM",
                      "device": device_name(device), "threads": torch.get_num_threads(),
                      "paper_tab8": {"DiT": {"steps": 250, "batch": 1, "memory_MB": 9000, "s_per_image": 3.5,
                                             "machine": "RTX A6000"},
                                     "EDM": {"steps": 18, "batch": 100, "memory_MB": 4000, "s_per_image": 0.06,
                                             "machine": "RTX A4500"}},
                      "dit": out, "edm": edm}, indent=2))


if __name__ == "__main__":
    main()
