"""Per-image latency of ViT-base image moderation on this machine's CPU: one image at a time, and a batch of 8.

The hub is not reachable here, so the checkpoint is a random-weight ViTForImageClassification with the
google/vit-base-patch16-224 configuration (12 layers, 768 wide, 16x16 patches, 224x224 input, 1000 classes) and
its image processor: the same architecture does the same arithmetic, so it costs the same time. It is saved to
a temporary directory and loaded through `moderate_image(model=...)`, the path a hub id takes.

    python -m benchmarks.image_speed [--repeats 3]      # from the repository root
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor  # noqa: E402

from moderation.image import IMAGENET_CLASSES, classifier, load_frames, moderate_image  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "images"
BATCH = 8


def build_vit_base(directory: Path) -> None:
    """Random weights, vit-base-patch16-224 shape; the first labels are the table's, so category mapping runs too."""
    table = [label for labels in IMAGENET_CLASSES.values() for label in labels]
    labels = table + [f"imagenet class {i}" for i in range(len(table), 1000)]
    config = ViTConfig(id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(directory)
    ViTImageProcessor().save_pretrained(directory)  # defaults match the hub checkpoint: 224x224, mean=std=0.5


def timed(run, repeats: int) -> tuple[float, float]:
    """(median, fastest) seconds over `repeats` runs; the fastest is the one least disturbed by other processes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (the median is printed)")
    args = parser.parse_args()

    photos = sorted(EXAMPLES.glob("*.jpg"))
    batch_frames = [load_frames(photos[i % len(photos)])[0] for i in range(BATCH)]
    with tempfile.TemporaryDirectory() as directory:
        build_vit_base(Path(directory))
        loaded = classifier.load_image_classifier(directory)
        moderate_image(photos[0], model=directory)  # warm-up: first call pays one-off allocation costs
        one = photos[0]
        frames = load_frames(one)
        pixels = classifier.preprocess(loaded, frames)
        logits = classifier.forward(loaded, pixels)

        steps = {
            "decode (load_frames)": lambda: load_frames(one),
            "preprocess (resize+normalise)": lambda: classifier.preprocess(loaded, frames),
            "forward (ViT-base)": lambda: classifier.forward(loaded, pixels),
            "postprocess (softmax+labels)": lambda: classifier.postprocess(loaded, logits),
            "moderate_image, end to end": lambda: moderate_image(one, model=directory),
        }
        figures = {name: timed(step, args.repeats) for name, step in steps.items()}
        batch = timed(lambda: classifier.classify(loaded, batch_frames), args.repeats)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"ViT-base (vit-base-patch16-224 shape, random weights) on CPU: torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} cores, load average {load}; {args.repeats} runs each")
    print(f"{'one image (' + one.name + f', {frames[0].width}x{frames[0].height})':<40} {'median':>9} {'fastest':>9}")
    for name, (median, fastest) in figures.items():
        print(f"  {name:<38} {median * 1000:6.0f} ms {fastest * 1000:6.0f} ms")
    print(f"batch of {BATCH} photos, one classify call (preprocess + forward + postprocess):")
    print(f"  {'whole batch':<38} {batch[0] * 1000:6.0f} ms {batch[1] * 1000:6.0f} ms")
    print(f"  {'per image':<38} {batch[0] / BATCH * 1000:6.0f} ms {batch[1] / BATCH * 1000:6.0f} ms")
    single = figures["moderate_image, end to end"]
    print(f"  per-image speed-up over one moderate_image call each: {single[0] / (batch[0] / BATCH):.2f}x (median), "
          f"{single[1] / (batch[1] / BATCH):.2f}x (fastest)")

if __name__ == "__main__":
    main()
