"""Zero-shot classification (appendix G.2) on a tiny BERT built from its config in a temporary folder:
the frozen text features, the cosine logits over a temperature, training, and evaluation among the
unseen classes only. Nothing is downloaded."""
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.catalog.defaults import default_recipe
from engine.catalog.recipes import Recipe
from engine.classifiers import zero_shot

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", ".", *[str(i) for i in range(10)]]


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A one-layer BERT of 16 dimensions and its WordPiece vocabulary, saved as transformers saves one."""
    from transformers import BertConfig, BertModel, BertTokenizer
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=32)).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("bert") / "bert")


def test_text_features_are_the_frozen_encoders_and_differ_by_class(bert):
    classes = [str(i) for i in range(10)]
    feats = zero_shot.class_text_features(bert, classes)
    assert feats.shape == (10, 16) and feats.dtype == np.float32 and np.isfinite(feats).all()
    # Each class's sentence differs in one token only, yet no two classes share a feature.
    d = np.linalg.norm(feats[:, None] - feats[None], axis=-1)
    assert (d[~np.eye(10, dtype=bool)] > 1e-4).all()
    assert zero_shot.prompts(["7"]) == ("a photo of a 7.",)


def test_folder_hash_follows_its_content(tmp_path):
    folder = build_tiny_bert(tmp_path / "b")
    before = zero_shot.text_encoder_sha256(folder)
    assert before == zero_shot.text_encoder_sha256(str(folder))
    (folder / "vocab.txt").write_text("\n".join(WORDS + ["extra"]) + "\n")
    assert zero_shot.text_encoder_sha256(folder) != before


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent", "no such folder"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "is not a folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "holds no config.json"),
])
def test_bad_folders_are_one_line(tmp_path, make, message):
    with pytest.raises(zero_shot.TextEncoderError, match=message):
        zero_shot.class_text_features(make(tmp_path), ["0", "1"])


def test_a_broken_folder_is_one_line_naming_it(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(zero_shot.TextEncoderError, match="cannot load a text encoder from --text-encoder") as err:
        zero_shot.class_text_features(folder, ["0", "1"])
    assert "\n" not in str(err.value)


def test_logits_are_scaled_cosines_over_the_classes_asked(bert):
    feats = zero_shot.class_text_features(bert, [str(i) for i in range(10)])
    model = zero_shot.build_model("smallcnn", 1, feats)
    x = torch.randn(4, 1, 8, 8)
    classes = torch.tensor([5, 6, 7])
    logits = model(x, classes)
    assert logits.shape == (4, 3)
    scale = 1 / zero_shot.TEMPERATURE_INIT
    assert logits.abs().max() <= scale + 1e-4          # |cos| <= 1, over the initial temperature
    image = torch.nn.functional.normalize(model.image(x), dim=-1)
    text = torch.nn.functional.normalize(model.text_proj(model.text_features[classes]), dim=-1)
    assert torch.allclose(logits, scale * image @ text.T, atol=1e-4)
    assert model.image(x).shape[1] == zero_shot.EMBED_DIM
    # The text encoder is frozen: its features are a buffer, not a parameter.
    assert not any(p is model.text_features for p in model.parameters())


def test_training_learns_and_predicts_only_unseen_classes(bert):
    """Two seen and two unseen classes of constant images: the run must classify test images among the
    unseen ones, and synthetic images of those classes (here: exact copies) make it do so perfectly."""
    torch.manual_seed(0)
    levels = torch.tensor([0, 80, 160, 240], dtype=torch.uint8)
    y = torch.arange(4).repeat_interleave(16)
    x = levels[y][:, None, None, None].expand(-1, 1, 8, 8).contiguous()
    feats = zero_shot.class_text_features(bert, ["0", "1", "2", "3"])
    recipe = Recipe(**{**default_recipe("smallcnn", "digits", 64, 64, 800).to_dict(), "iterations": 60,
                       "crop_pad": 0, "flip": False, "milestones": (0.5, 0.75)})
    test_x, test_y = x[y >= 2], y[y >= 2]
    result = zero_shot.train_zero_shot("smallcnn", x, y, test_x, test_y, feats, np.array([2, 3]), recipe, 0,
                                       torch.device("cpu"))
    assert result.top1 == 100.0 and result.top5 is None and np.isfinite(result.final_loss)
    assert result.steps == 60
    # Test images of the seen classes can never be right: only the unseen classes are candidates.
    mixed = zero_shot.train_zero_shot("smallcnn", x, y, x, y, feats, np.array([2, 3]), recipe, 0,
                                      torch.device("cpu"))
    assert mixed.top1 == 50.0
