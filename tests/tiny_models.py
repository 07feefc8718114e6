"""Tiny random-weight model folders for `engine synthetic generate` tests, built from configs: a
Stable Diffusion pipeline, a CLIP model with its processor, and a GPT-2 caption writer. Nothing is
downloaded; the tokenizers' files are written here (byte-level BPE over printable ASCII, no merges)."""
import json
from pathlib import Path

ASCII = [chr(i) for i in range(33, 127)]


def write_clip_tokenizer_files(folder: Path) -> int:
    """vocab.json and merges.txt of a CLIP tokenizer that spells every word letter by letter."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):  # CLIP marks a word's last symbol with </w>
        for c in ASCII:
            vocab[c + suffix] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return len(vocab)


def clip_tokenizer(folder: Path, max_length: int):
    from transformers import CLIPTokenizer
    write_clip_tokenizer_files(folder)
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=max_length)


def build_sd_pipeline(out: Path, seed: int = 0) -> Path:
    """A StableDiffusionPipeline of a few thousand weights: 16 px by default (8 latent x 2)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(seed)
    tokenizer = clip_tokenizer(out.parent / f"{out.name}-tokenizer", 32)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                                        projection_dim=16, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=4, sample_size=16)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(out))
    return out


def build_clip(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor
    torch.manual_seed(seed)
    tokenizer = clip_tokenizer(out.parent / f"{out.name}-tokenizer", 64)
    config = CLIPConfig(text_config=dict(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64,
                                         bos_token_id=0, eos_token_id=1, pad_token_id=1),
                        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=16, patch_size=8),
                        projection_dim=16)
    model = CLIPModel(config)
    with torch.no_grad():  # random projections score every class alike; a larger scale spreads the softmax
        model.logit_scale.fill_(4.6)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 16},
                                                                 crop_size={"height": 16, "width": 16}),
                              tokenizer=tokenizer)
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    return out


def build_caption_model(out: Path, seed: int = 0) -> Path:
    """A GPT-2 of one layer: its captions are noise, which never name a class."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(ASCII + ["Ġ", "Ċ", "<|endoftext|>"])}
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = GPT2Tokenizer.from_pretrained(str(out))
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=512, n_embd=16, n_layer=1, n_head=2,
                               bos_token_id=len(vocab) - 1, eos_token_id=len(vocab) - 1)).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def t5_tokenizer():
    """A T5 tokenizer (unigram over printable ASCII) made in memory with the tokenizers library."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import T5TokenizerFast
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)] + [(c, -2.0) for c in ASCII]
    model = Tokenizer(models.Unigram(vocab, unk_id=2))
    model.pre_tokenizer = pre_tokenizers.Metaspace()
    model.decoder = decoders.Metaspace()
    return T5TokenizerFast(tokenizer_object=model, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           extra_ids=0), len(vocab)


def build_sd3_pipeline(out: Path, seed: int = 0) -> Path:
    """A StableDiffusion3Pipeline (two CLIP text encoders, a T5, an MMDiT) of a few thousand weights;
    its own default side is 16 px (sample_size 8 x a VAE of two blocks)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel
    torch.manual_seed(seed)
    tokenizer = clip_tokenizer(out.parent / f"{out.name}-tokenizer", 32)
    t5_tok, t5_vocab = t5_tokenizer()

    def clip_text():
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=32, projection_dim=16, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    # The two CLIP encoders' 16 + 16 features meet T5's 32 in the joint attention.
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8,
                                        num_attention_heads=2, caption_projection_dim=16, joint_attention_dim=32,
                                        pooled_projection_dim=32, out_channels=4)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=4, sample_size=16, shift_factor=0.0609,
                        scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False)
    t5 = T5EncoderModel(T5Config(vocab_size=t5_vocab, d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=2))
    pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                                    text_encoder=clip_text(), tokenizer=tokenizer, text_encoder_2=clip_text(),
                                    tokenizer_2=tokenizer, text_encoder_3=t5, tokenizer_3=t5_tok)
    pipe.save_pretrained(str(out))
    return out
