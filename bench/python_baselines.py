"""The two Python pipelines a user would write instead of imgpipe, timed on the same images as bench/run.

    python_baselines.py plain MODEL_DIR LIST [--threads 2] [--batch-size 32]
    python_baselines.py ray   MODEL_DIR LIST [--threads 2] [--batch-size 32] [--actor-cpus 1]

MODEL_DIR is a store entry with a TorchScript backbone.pt and a softmax head.f32 (models/photos); LIST names one
image per line. Both pipelines do what the photo model's contract says (scripts/photo-model/reference.py): PIL
decode + convert("RGB"), torchvision Resize(256, bilinear; PIL antialiases) + CenterCrop(224) + ToTensor +
Normalize(model.json mean/std), the TorchScript backbone on batches of 32, then the head (float32 matmul) and a
softmax, top-1 label. Files PIL cannot decode are counted as errors, like imgpipe's error lines.

plain: one process, torch.set_num_threads(THREADS); decode and preprocess one image after the other, then the
forward pass of each batch. Timed: from the first image read to the last batch's labels (the model is loaded
before the clock starts, as broker mode's workers have theirs loaded).

ray: Ray Data batch inference. ray.init(num_cpus=THREADS) (outside the clock), then read_binary_files ->
map_batches(preprocess function, batch 32) -> map_batches(callable class holding the model, an actor pool of one
actor (compute=ActorPoolStrategy(size=1), what concurrency=1 meant before Ray 2.51), batch_size=32,
num_cpus=ACTOR_CPUS), torch.set_num_threads(THREADS) inside the actor (Ray sets OMP_NUM_THREADS from num_cpus).
ACTOR_CPUS is 1, Ray's default for a task or actor, which the batch-inference guide keeps for CPU inference: the
guide's other advice, reserving for a multi-threaded model the CPUs it uses (num_cpus=2), deadlocks on a 2-CPU
node, since the read and preprocess tasks then never get a CPU (measured: no progress in 5 minutes). With equal
num_cpus Ray fuses the preprocess stage into the actor stage, so the actor decodes and runs the model in turn. Timed:
from building the dataset to the last label iterated on the driver, which includes creating the actor and
loading the model in it (the load time is printed separately as model_load_s).

Prints one JSON object: images, classified, errors, seconds, images_per_s (images / seconds), labels (path -> label).
"""
import argparse
import io
import json
import os
import sys
import time

import numpy as np


def load_model(model_dir):
    import torch
    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as f:
        config = json.load(f)
    backbone = torch.jit.load(os.path.join(model_dir, config["backbone"]["file"]), map_location="cpu")
    backbone.eval()
    classes = config["classes"]
    dim = config["backbone"]["feature_dim"]
    raw = np.fromfile(os.path.join(model_dir, config["classifier"]["file"]), dtype="<f4")
    if raw.size != len(classes) * dim + len(classes):
        sys.exit(f"{model_dir}: head size does not match {len(classes)} classes x {dim} features")
    weights = torch.from_numpy(raw[:len(classes) * dim].reshape(len(classes), dim).copy())
    bias = torch.from_numpy(raw[len(classes) * dim:].copy())
    return config, backbone, weights, bias, classes


def make_transform(config):
    from torchvision import transforms
    spec = config["input"]
    crop = spec["width"]
    resize = round(crop / spec.get("crop", 0.875))  # 224 / 0.875 = 256, torchvision's usual Resize(256)
    return transforms.Compose([
        transforms.Resize(resize, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(crop),
        transforms.ToTensor(),
        transforms.Normalize(spec["mean"], spec["std"]),
    ])


def classify(torch, backbone, weights, bias, classes, tensors):
    with torch.inference_mode():
        features = backbone(torch.stack(tensors))
        probs = torch.softmax(features @ weights.T + bias, dim=1)
        return [classes[i] for i in probs.argmax(dim=1).tolist()]


def run_plain(args, paths):
    import torch
    from PIL import Image
    torch.set_num_threads(args.threads)
    config, backbone, weights, bias, classes = load_model(args.model_dir)
    transform = make_transform(config)
    labels, errors = {}, 0
    start = time.perf_counter()
    for first in range(0, len(paths), args.batch_size):
        tensors, names = [], []
        for path in paths[first:first + args.batch_size]:
            try:
                with Image.open(path) as im:
                    tensors.append(transform(im.convert("RGB")))
                names.append(path)
            except Exception:
                errors += 1
        if tensors:
            labels.update(zip(names, classify(torch, backbone, weights, bias, classes, tensors)))
    return time.perf_counter() - start, labels, errors, {}


def run_ray(args, paths):
    import ray
    import ray.data

    ray.init(num_cpus=args.threads, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    model_dir, threads = os.path.abspath(args.model_dir), args.threads

    def preprocess(batch):
        from PIL import Image
        import torch  # noqa: F401  (transforms need it)
        with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as f:
            transform = make_transform(json.load(f))
        images, names, failed = [], [], []
        for path, data in zip(batch["path"], batch["bytes"]):
            try:
                with Image.open(io.BytesIO(data)) as im:
                    images.append(transform(im.convert("RGB")).numpy())
                names.append(path)
            except Exception:
                failed.append(path)
        return {"path": np.array(names + failed, dtype=object),
                "image": np.stack(images + [np.zeros((3, 224, 224), np.float32)] * len(failed)) if names or failed
                else np.zeros((0, 3, 224, 224), np.float32),
                "ok": np.array([True] * len(names) + [False] * len(failed))}

    class Classifier:
        def __init__(self):
            import torch
            torch.set_num_threads(threads)
            began = time.perf_counter()
            self.torch = torch
            _, self.backbone, self.weights, self.bias, self.classes = load_model(model_dir)
            self.load_s = time.perf_counter() - began

        def __call__(self, batch):
            ok = batch["ok"]
            tensors = list(self.torch.from_numpy(batch["image"][ok]))
            labels = classify(self.torch, self.backbone, self.weights, self.bias, self.classes, tensors) if tensors else []
            out = np.array([""] * len(ok), dtype=object)
            out[ok] = labels
            return {"path": batch["path"], "label": out, "ok": ok,
                    "load_s": np.full(len(ok), self.load_s)}

    start = time.perf_counter()
    ds = ray.data.read_binary_files(paths, include_paths=True)
    ds = ds.map_batches(preprocess, batch_size=args.batch_size, num_cpus=1)
    ds = ds.map_batches(Classifier, compute=ray.data.ActorPoolStrategy(size=1), batch_size=args.batch_size, num_cpus=args.actor_cpus)
    labels, errors, load_s = {}, 0, 0.0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for path, label, ok in zip(batch["path"], batch["label"], batch["ok"]):
            if ok:
                labels[path] = label
            else:
                errors += 1
        if len(batch["load_s"]):
            load_s = float(batch["load_s"][0])
    seconds = time.perf_counter() - start
    ray.shutdown()
    return seconds, labels, errors, {"model_load_s": round(load_s, 2), "ray": ray.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["plain", "ray"])
    ap.add_argument("model_dir")
    ap.add_argument("list")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--actor-cpus", type=float, default=1)
    args = ap.parse_args()
    with open(args.list, encoding="utf-8") as f:
        paths = [line.strip() for line in f if line.strip()]
    seconds, labels, errors, extra = (run_plain if args.mode == "plain" else run_ray)(args, paths)
    result = {"mode": args.mode, "images": len(paths), "classified": len(labels), "errors": errors,
              "seconds": round(seconds, 3), "images_per_s": round(len(paths) / seconds, 1), **extra}
    print(json.dumps(result))
    if os.environ.get("BASELINE_LABELS"):
        with open(os.environ["BASELINE_LABELS"], "w", encoding="utf-8") as f:
            json.dump(labels, f)


if __name__ == "__main__":
    main()
