"""Prompts for `engine synthetic generate`: each class's captions and each image's seed, for the
paper's two open-set protocols (appendix G.1, Tab. 7; Sec. 4.3.2).

- simple: one prompt per class, "High-quality photo of a {c}." (SD2 in Tab. 7).
- captions: diverse captions after Tian et al. [42], in the three template families the paper
  names, c -> caption, (c, bg) -> caption and (c, rel) -> caption; each caption makes
  --images-per-caption images (five in the paper). The paper writes the captions with a language
  model; here a local one may (engine.generators.text_to_image.CaptionModel), else the template
  writer below composes them from the small vocabularies bundled in engine/generators/vocab/.

Everything here is a pure function of the classes, the amounts and the seed, so a resumed run plans
exactly what the first one did. No torch: the plan is made and checked before a model is loaded.
"""
from __future__ import annotations

import functools
import hashlib
import math
import random
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, Optional

PROTOCOLS = ("captions", "simple")
# Appendix G.1 and Tab. 7 print it with the article "a" whatever the class: kept verbatim.
SIMPLE_TEMPLATE = "High-quality photo of a {c}."
FAMILIES = ("c", "c,bg", "c,rel")
FAMILY_LABELS = {"c": "c -> caption", "c,bg": "c, bg -> caption", "c,rel": "c, rel -> caption"}
# A caption longer than this is cut at a word: CLIP-style text encoders read 77 tokens at most.
MAX_CAPTION_CHARS = 300


@dataclass(frozen=True)
class Caption:
    text: str
    family: Optional[str]        # None under the simple protocol
    inputs: dict = field(default_factory=dict)   # what the family drew: {"bg": ...} or {"rel": ..., "object": ...}
    writer: str = "template"     # simple | template | model | template (model fallback)


@dataclass(frozen=True)
class Job:
    """One image to generate: class index, caption index within the class, image index within the
    caption, and the seed of its initial noise."""
    label: int
    caption: int
    image: int
    seed: int


# A caption model: (class phrase, family, inputs, seed) -> its caption, or None when it wrote none
# that names the class.
Writer = Callable[[str, str, dict, int], Optional[str]]


def class_phrase(name: str) -> str:
    """A class name as it reads in a sentence: folder names use '_' for spaces (brown_bear)."""
    return re.sub(r"\s+", " ", str(name).replace("_", " ")).strip()


def article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" else "a"


@functools.lru_cache(maxsize=None)
def vocabulary(kind: str) -> tuple[str, ...]:
    """A bundled list (backgrounds, relations, objects, descriptions): one entry a line, '#' comments."""
    text = resources.files("engine.generators").joinpath("vocab", f"{kind}.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def derived_seed(*parts, bits: int = 63) -> int:
    """A seed for one caption or image from the run's seed and its place: independent of how many
    images are asked for and of the order they are generated in."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << bits) - 1)


def captions_per_class(protocol: str, per_class: int, images_per_caption: int) -> int:
    return 1 if protocol == "simple" else math.ceil(per_class / images_per_caption)


def caption_inputs(family: str, rng: random.Random) -> dict:
    if family == "c,bg":
        return {"bg": rng.choice(vocabulary("backgrounds"))}
    if family == "c,rel":
        return {"rel": rng.choice(vocabulary("relations")), "object": rng.choice(vocabulary("objects"))}
    return {}


def template_caption(phrase: str, family: str, inputs: dict, rng: random.Random) -> str:
    if family == "c,bg":
        return f"a photo of {article(phrase)} {phrase} {inputs['bg']}."
    if family == "c,rel":
        return f"a photo of {article(phrase)} {phrase} {inputs['rel']} {inputs['object']}."
    return rng.choice(vocabulary("descriptions")).format(a=article(phrase), c=phrase)


def clean_caption(text: str) -> str:
    """A model's output as one caption: its first line, without quotes, at most MAX_CAPTION_CHARS."""
    line = next((s for s in str(text).splitlines() if s.strip()), "")
    line = re.sub(r"\s+", " ", line).strip().strip("\"'").strip()
    if len(line) > MAX_CAPTION_CHARS:
        line = line[:MAX_CAPTION_CHARS].rsplit(" ", 1)[0]
    return line


def mentions(caption: str, phrase: str) -> bool:
    """Whether a caption names the class, as a word of its own ('3' is not named by 'c39o'): one that
    does not would make images of something else."""
    def norm(s):
        return re.sub(r"[\s_\-]+", " ", s.lower())
    return re.search(rf"(?<![a-z0-9]){re.escape(norm(phrase))}(?![a-z0-9])", norm(caption)) is not None


def plan_captions(classes: list[str], protocol: str, per_class: int, images_per_caption: int, seed: int,
                  writer: Optional[Writer] = None) -> list[list[Caption]]:
    """Each class's captions, in order. Caption j of a class is of family FAMILIES[j % 3], so every
    family is used equally often; its inputs (background, relation) are drawn from the bundled lists
    with a generator seeded by (seed, class, j)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown prompt protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    out = []
    for c, name in enumerate(classes):
        phrase = class_phrase(name)
        if protocol == "simple":
            out.append([Caption(SIMPLE_TEMPLATE.format(c=phrase), None, {}, "simple")])
            continue
        captions = []
        for j in range(captions_per_class(protocol, per_class, images_per_caption)):
            family = FAMILIES[j % len(FAMILIES)]
            rng = random.Random(derived_seed(seed, "caption", c, j))
            inputs = caption_inputs(family, rng)
            text, who = None, "template"
            if writer is not None:
                text = writer(phrase, family, inputs, derived_seed(seed, "writer", c, j, bits=31))
                who = "model" if text else "template (model fallback)"
            captions.append(Caption(text or template_caption(phrase, family, inputs, rng), family, inputs, who))
        out.append(captions)
    return out


def plan_jobs(num_classes: int, protocol: str, per_class: int, images_per_caption: int, seed: int) -> list[Job]:
    """Every image to generate, class by class, caption by caption."""
    jobs = []
    for c in range(num_classes):
        for k in range(per_class):
            j, i = (0, k) if protocol == "simple" else divmod(k, images_per_caption)
            jobs.append(Job(c, j, i, derived_seed(seed, "image", c, j, i)))
    return jobs
