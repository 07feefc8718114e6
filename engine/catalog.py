"""Names the engine accepts, in a torch-free module so that the app and the job queue can
validate a request without importing torch (the modules that build these things check that
they agree with this list)."""

# CLI name -> (stored name, input size)
CLASSIFIERS = {
    "resnet110": ("ResNet-110", 32),
    "resnet50": ("ResNet-50", 224),
    "vit-b32": ("ViT-B/32", 224),
    "smallcnn": ("SmallCNN", 8),
}
# Closed-set generator kinds: stored name prefix (rows are named `<name>-<preset>`), presets (the
# first is the default) and the options `--generator-option key=value` accepts.
GENERATORS = {
    "edm": {"name": "EDM", "presets": ("tiny", "small", "cifar"),
            "options": ("train_images", "batch_size", "lr", "sample_seed", "seed")},
    "dit": {"name": "DiT", "presets": ("tiny", "S/2", "B/2", "L/2", "XL/2"),
            "options": ("train_images", "batch_size", "lr", "ema_decay", "label_dropout", "grad_checkpointing",
                        "checkpoint_every_images",
                        "vae", "vae_train_images", "cfg_scale", "sampling_steps", "sampler", "sample_seed", "seed")},
}
GENERATOR_PRESETS = GENERATORS["edm"]["presets"]   # EDM's, for callers that predate --generator
GENERATOR_OPTIONS = GENERATORS["edm"]["options"]
RECIPE_FIELDS = ("lr", "batch_size", "weight_decay", "momentum", "schedule", "epochs", "iterations",
                 "milestones", "warmup", "crop_pad", "flip", "input_size")
DATASET_FORMS = ("digits", "cifar10", "medmnist:<flag>", "folder:<path>")
ENGINE_AUGMENTATIONS = ("real", "closed")
