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
GENERATOR_PRESETS = ("tiny", "small", "cifar")
GENERATOR_OPTIONS = ("train_images", "batch_size", "lr", "sample_seed", "seed", "nproc")
RECIPE_FIELDS = ("lr", "batch_size", "weight_decay", "momentum", "schedule", "epochs", "iterations",
                 "milestones", "warmup", "crop_pad", "flip", "input_size")
DATASET_FORMS = ("digits", "cifar10", "medmnist:<flag>", "folder:<path>")
ENGINE_AUGMENTATIONS = ("real", "closed")
