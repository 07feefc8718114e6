"""Zero-shot classification as the paper's appendix G.2 trains it (Tab. 21, Fig. 14).

Each class name is written into a sentence (PROMPT) and encoded once by a frozen, pretrained BERT read
from a local folder (transformers, `local_files_only`: never downloaded); a trainable linear layer
projects it into a joint space of EMBED_DIM (512) dimensions. The image encoder is the catalog's
classifier trained from scratch with EMBED_DIM outputs: its last linear layer is the projection of its
features into the same space. Logits are the cosine similarities of an image's embedding to each class's
text embedding over a temperature (learned, from CLIP's 0.07), and training maximises the similarity
of every image to its own class among the classes the run's images hold. A test image is classified
into the most similar of the unseen classes.

The folder checks and the folder's content hash are torch-free (engine.execution.plan keys runs by it);
torch and transformers are imported only when a run trains.
"""
from __future__ import annotations

import functools
import math
import os
import time
from pathlib import Path

import numpy as np

from engine.messages import InputError

# The paper says a class is "mapped to a text description M(y) by a natural language template" and no
# more; ours is CLIP's usual one. The class names are the dataset's (ImageNet-10: French bulldog, ...).
PROMPT = "a photo of a {}."
EMBED_DIM = 512                 # the joint space (appendix G.2)
TEMPERATURE_INIT = 0.07         # CLIP's: logits = cos / T, T learned, 1 / T kept at most MAX_SCALE
MAX_SCALE = 100.0
# A sentence's BERT feature: the mean of its tokens' last hidden states (padding aside). The paper does
# not say; a frozen BERT's [CLS] state was never trained to summarise a sentence, the mean does better.
POOLING = "mean"


class TextEncoderError(InputError):
    """A text-encoder folder that cannot be used; one line naming it."""


def check_folder(folder) -> Path:
    """The --text-encoder folder as far as can be told without loading it."""
    if folder is None or str(folder).strip() == "":
        raise TextEncoderError("--text-encoder DIR is missing: a local BERT folder (never downloaded)")
    path = Path(str(folder)).expanduser()
    if not path.exists():
        raise TextEncoderError(f"--text-encoder {path}: no such folder (models are never downloaded: give a local "
                               f"BERT folder)")
    if not path.is_dir():
        raise TextEncoderError(f"--text-encoder {path} is not a folder")
    if not (path / "config.json").is_file():
        raise TextEncoderError(f"--text-encoder {path} holds no config.json: not a transformers model folder")
    return path


def _signature(path: Path) -> tuple:
    """What changes when a file of the folder changes, cheaply: names, sizes and modification times."""
    out = []
    for top, dirs, names in os.walk(path, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(names):
            if not n.startswith("."):
                st = (Path(top) / n).stat()
                out.append((os.path.relpath(Path(top) / n, path), st.st_size, st.st_mtime_ns))
    return tuple(out)


def text_encoder_sha256(folder) -> str:
    """The content hash of the folder (every file): a changed weight or vocabulary is another encoder,
    and so another setting's runs."""
    path = check_folder(folder).resolve()
    return _sha256(str(path), _signature(path))


@functools.lru_cache(maxsize=16)
def _sha256(path: str, signature: tuple) -> str:
    from engine.generators.generate_checks import GenerateFailed, folder_sha256
    try:
        return folder_sha256(Path(path), "--text-encoder")
    except GenerateFailed as err:
        raise TextEncoderError(str(err)) from None


def prompts(classes) -> tuple[str, ...]:
    return tuple(PROMPT.format(c) for c in classes)


def class_text_features(folder, classes) -> np.ndarray:
    """(K, hidden) float32: the frozen encoder's feature of each class's sentence, or one line saying
    why the folder cannot be loaded."""
    path = check_folder(folder).resolve()
    return _features(str(path), _signature(path), prompts(classes))


@functools.lru_cache(maxsize=8)
def _features(path: str, signature: tuple, sentences: tuple[str, ...]) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # a bar per load would interleave with the run's own
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    except Exception as err:  # whatever a broken folder raises (no weights, bad JSON, no vocabulary)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TextEncoderError(f"cannot load a text encoder from --text-encoder {path}: {first}") from None
    enc = tokenizer(list(sentences), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"][..., None].to(hidden.dtype)
    return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().numpy()


def build_model(classifier: str, in_chans: int, text_features):
    """The image encoder (the catalog's classifier, EMBED_DIM outputs), the text projection, the temperature."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from engine.classifiers.networks import create_classifier

    class ZeroShotModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.image = create_classifier(classifier, EMBED_DIM, in_chans)
            self.text_proj = nn.Linear(text_features.shape[1], EMBED_DIM)
            self.register_buffer("text_features", torch.as_tensor(text_features, dtype=torch.float32))
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / TEMPERATURE_INIT)))

        def forward(self, x, classes):
            """Logits of images x over the given classes (indices into the dataset's classes)."""
            image = F.normalize(self.image(x).float(), dim=-1)
            text = F.normalize(self.text_proj(self.text_features[classes]), dim=-1)
            return self.logit_scale.exp().clamp(max=MAX_SCALE) * image @ text.T

    return ZeroShotModel()


def train_zero_shot(classifier: str, train_x_u8, train_y, test_x_u8, test_y, text_features, unseen, recipe,
                    seed: int, device, on_progress=None):
    """Train on (N, C, H, W) uint8 images on `device` (real images of the seen classes, synthetic ones of
    the unseen), then classify the test images among the `unseen` classes. Returns a TrainResult whose
    top-1 (and top-5 when more than five classes are candidates) is over those test images."""
    import torch
    import torch.nn.functional as F

    from engine.classifiers.train import TrainResult, augment, lr_factor, resize_to, to_unit
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    model = build_model(classifier, train_x_u8.shape[1], text_features).to(device)
    # The classes the run's images hold: without synthetic images only the seen ones, so that no
    # unseen class is pushed away for lack of images.
    classes = torch.unique(train_y)
    remap = torch.full((len(text_features),), -1, dtype=torch.long, device=device)
    remap[classes] = torch.arange(len(classes), device=device)
    target = remap[train_y]
    scale = [model.logit_scale]
    rest = [p for p in model.parameters() if p is not model.logit_scale]
    opt = torch.optim.SGD([{"params": rest, "weight_decay": recipe.weight_decay},
                           {"params": scale, "weight_decay": 0.0}], lr=recipe.lr, momentum=recipe.momentum)
    n = len(train_x_u8)
    total = recipe.total_steps(n)
    batch = min(recipe.batch_size, n)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(recipe, s, total))
    order = torch.empty(0, dtype=torch.long, device=device)
    model.train()
    start = time.perf_counter()
    loss = torch.tensor(float("nan"))
    for step in range(total):
        while len(order) < batch:
            order = torch.cat([order, torch.randperm(n, device=device, generator=gen)])
        idx, order = order[:batch], order[batch:]
        x = resize_to(augment(to_unit(train_x_u8[idx]), recipe.crop_pad, recipe.flip, gen), recipe.input_size)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(x, classes), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_progress is not None and (step % 20 == 0 or step == total - 1):
            on_progress(step + 1, total, loss.item())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    top1, top5 = evaluate(model, test_x_u8, test_y, unseen, recipe.input_size, device)
    return TrainResult(top1, top5, float(loss.item()), total, seconds, total * batch / max(seconds, 1e-9), model)


def evaluate(model, test_x_u8, test_y, unseen, input_size: int, device, batch: int = 1000):
    """Top-1 (and top-5 over more than five candidates) of test images among the unseen classes."""
    import torch

    from engine.classifiers.train import resize_to, to_unit
    candidates = torch.as_tensor(unseen, dtype=torch.long, device=device)
    k = min(5, len(candidates))
    correct1 = correct5 = 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(test_x_u8), batch):
            x = resize_to(to_unit(test_x_u8[i:i + batch].to(device)), input_size)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(x, candidates).float()
            top = candidates[logits.topk(k, dim=1).indices]
            y = test_y[i:i + batch].to(device)
            correct1 += (top[:, 0] == y).sum().item()
            correct5 += (top == y[:, None]).any(dim=1).sum().item()
    n = max(len(test_x_u8), 1)
    return 100.0 * correct1 / n, (100.0 * correct5 / n if len(candidates) > 5 else None)
