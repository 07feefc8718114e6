"""Train a classifier on uint8 images held on the device, and evaluate it on the full test split.

In the spirit of airbench: the whole training set sits on the device as uint8, each batch is
gathered, augmented (random crop + flip) and resized there, and the loop never touches a
DataLoader. bf16 autocast and channels_last on CUDA; the same code runs on the CPU, where it is
deterministic for a given seed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from engine.classifiers.networks import create_classifier
from engine.catalog.recipes import Recipe


def to_unit(x_u8: torch.Tensor) -> torch.Tensor:
    return x_u8.float().div_(127.5).sub_(1.0)


def augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flips, for a whole batch at once."""
    b, c, h, w = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), device=x.device, generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (b,), device=x.device, generator=gen)
        rows = dy[:, None] + torch.arange(h, device=x.device)
        cols = dx[:, None] + torch.arange(w, device=x.device)
        # One advanced-indexing gather crops every image at its own offset.
        x = xp[torch.arange(b, device=x.device)[:, None, None, None],
               torch.arange(c, device=x.device)[None, :, None, None],
               rows[:, None, :, None], cols[:, None, None, :]]
    if flip:
        mask = torch.rand(b, device=x.device, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


@dataclass
class TrainResult:
    top1: float
    top5: float | None
    final_loss: float
    steps: int
    train_seconds: float
    images_per_second: float
    model: torch.nn.Module | None = field(default=None, repr=False)


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def predict(model, x_u8: torch.Tensor, input_size: int, device, batch: int = 1000) -> torch.Tensor:
    """Predicted classes of uint8 NCHW images."""
    model.eval()
    out = []
    for i in range(0, len(x_u8), batch):
        x = resize_to(to_unit(x_u8[i:i + batch].to(device)), input_size)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(model(x).argmax(dim=1).cpu())
    return torch.cat(out)


@torch.no_grad()
def evaluate(model, test_x_u8, test_y, input_size: int, device, batch: int = 1000) -> tuple[float, float | None]:
    model.eval()
    correct1 = correct5 = 0
    k = 5
    for i in range(0, len(test_x_u8), batch):
        x = resize_to(to_unit(test_x_u8[i:i + batch].to(device)), input_size)
        y = test_y[i:i + batch].to(device)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x).float()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        correct1 += (top[:, 0] == y).sum().item()
        correct5 += (top == y[:, None]).any(dim=1).sum().item()
    n = len(test_x_u8)
    return 100.0 * correct1 / n, (100.0 * correct5 / n if k == 5 else None)


def lr_factor(recipe: Recipe, step: int, total: int) -> float:
    warm = int(recipe.warmup * total)
    if step < warm:
        return (step + 1) / warm
    if recipe.schedule == "cosine":
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 0.1 ** sum(step >= int(m * total) for m in recipe.milestones)


def train_classifier(classifier: str, train_x_u8: torch.Tensor, train_y: torch.Tensor, test_x_u8: torch.Tensor,
                     test_y: torch.Tensor, num_classes: int, recipe: Recipe, seed: int, device: torch.device,
                     compile: bool = False, on_progress=None) -> TrainResult:
    """train_x_u8: (N, C, H, W) uint8 already on `device`. on_progress(step, total, loss) is optional."""
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    model = create_classifier(classifier, num_classes, train_x_u8.shape[1]).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile else model
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    n = len(train_x_u8)
    total = recipe.total_steps(n)
    batch = min(recipe.batch_size, n)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(recipe, s, total))
    order = torch.empty(0, dtype=torch.long, device=device)
    model.train()
    loss_value = float("nan")
    start = time.perf_counter()
    for step in range(total):
        # A stream of fresh permutations: every epoch reshuffles, and a batch may straddle two.
        while len(order) < batch:
            order = torch.cat([order, torch.randperm(n, device=device, generator=gen)])
        idx, order = order[:batch], order[batch:]
        x = augment(to_unit(train_x_u8[idx]), recipe.crop_pad, recipe.flip, gen)
        x = resize_to(x, recipe.input_size)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(step_model(x), train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_progress is not None and (step % 20 == 0 or step == total - 1):
            loss_value = loss.item()
            on_progress(step + 1, total, loss_value)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    loss_value = loss.item() if total else float("nan")
    top1, top5 = evaluate(model, test_x_u8, test_y, recipe.input_size, device)
    return TrainResult(top1, top5, loss_value, total, seconds, total * batch / max(seconds, 1e-9), model)
