"""What DiT training keeps in memory at a batch size, counted without a GPU; prints JSON.

    python bench/dit_memory.py [--preset XL/2] [--resolution 224] [--classes 100] [--batch 256]

An estimate, not a measurement: the network is built on PyTorch's meta device (shapes, no data,
no arithmetic) and one forward pass is run at batches 1 and 2 with autograd's saved-tensor hooks
counting the bytes it keeps for backward; the difference is what one more image costs. This is
done with and without gradient checkpointing (diffusers' `enable_gradient_checkpointing`, as the
XL/2 preset trains). The static part is what AdamW training with an EMA copy holds per parameter
in fp32: weights, gradients, two moments and the EMA (20 bytes).

What it leaves out, so that a GPU run (`bench/gpu.sh`) has to settle the question: activations are
counted in fp32 (bf16 autocast stores most of them at half the size, so this is an upper bound on
them); attention is counted as PyTorch's math path keeps it (on a GPU, SDPA's flash or
memory-efficient kernels do not keep the attention matrix); with checkpointing, one block's
activations are recomputed during backward and held at once, counted here as one block's share of
the un-checkpointed total; the allocator's caching and fragmentation, CUDA context and kernels'
workspaces are not counted at all.
"""
from __future__ import annotations

import argparse
import json

import torch

GiB = 2 ** 30


def saved_bytes(net, batch: int, latent_size: int, latent_channels: int) -> int:
    """Bytes autograd keeps for backward after one forward pass at `batch`, on the meta device."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    x = torch.empty(batch, latent_channels, latent_size, latent_size, device="meta")
    t = torch.zeros(batch, dtype=torch.long, device="meta")
    y = torch.zeros(batch, dtype=torch.long, device="meta")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x, t, y)
    return total[0]


def estimate(preset: str = "XL/2", resolution: int = 224, num_classes: int = 100, batch: int = 256,
             vae: str = "f8") -> dict:
    from engine.generators.dit import PRESETS, DiT, parameter_count
    from engine.generators.vae import PRESETS as VAE_PRESETS
    vae_arch = VAE_PRESETS[vae]
    latent_size = resolution // 2 ** (len(vae_arch["block_out_channels"]) - 1)
    channels = vae_arch["latent_channels"]
    with torch.device("meta"):
        net = DiT(latent_size, channels, num_classes, preset)
    net.train()
    params = parameter_count(net)
    per_image = {}
    for checkpointing in (False, True):
        if checkpointing:
            net.model.enable_gradient_checkpointing()
        one, two = (saved_bytes(net, b, latent_size, channels) for b in (1, 2))
        per_image[checkpointing] = two - one  # what stays, the weights linears keep for backward, cancels
    blocks = PRESETS[preset]["num_layers"]
    static = 20 * params  # fp32 weights, gradients, AdamW's two moments, EMA
    recompute = per_image[False] / blocks * batch  # one block's activations, held during its backward
    with_ckpt = static + per_image[True] * batch + recompute
    without = static + per_image[False] * batch
    return {
        "benchmark": "DiT training memory estimate (meta device, saved tensors)",
        "preset": preset, "resolution": resolution, "latent": [channels, latent_size, latent_size],
        "tokens": (latent_size // PRESETS[preset]["patch_size"]) ** 2, "num_classes": num_classes,
        "batch": batch, "parameters": params,
        "static_gib": round(static / GiB, 2),
        "activations_per_image_mib": {"checkpointing": round(per_image[True] / 2 ** 20, 2),
                                      "no_checkpointing": round(per_image[False] / 2 ** 20, 2)},
        "estimate_gib_fp32_activations": {"checkpointing": round(with_ckpt / GiB, 1),
                                          "no_checkpointing": round(without / GiB, 1)},
        "note": "upper bound on activations (fp32, math attention); no allocator, context or workspace; "
                "a GPU run must confirm",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="XL/2")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    print(json.dumps(estimate(args.preset, args.resolution, args.classes, args.batch), indent=2))


if __name__ == "__main__":
    main()
