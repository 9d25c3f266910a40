"""An image folder like a user's own small dataset: scikit-learn's 1,797 handwritten digits
(8×8, 16 grey levels; UCI "Optical Recognition of Handwritten Digits") upscaled to 32×32 PNGs,
split 80/20 by a fixed seed into `train/<digit>/` (1,437 images) and `test/<digit>/` (360).
It measures what the trainer's defaults do on a folder of small images (docs/training.md):

    python3 benches/python/make_digits_folder.py target/digits-folder
    cargo xtask train lenet5 --dataset target/digits-folder
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/digits-folder")
    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8)
    indices = np.arange(len(images))
    train, test = train_test_split(indices, test_size=0.2, random_state=0, stratify=digits.target)
    for split, chosen in [("train", train), ("test", test)]:
        for index in chosen:
            folder = root / split / str(digits.target[index])
            folder.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray(images[index], mode="L").resize((32, 32), Image.BILINEAR)
            image.save(folder / f"{index:04d}.png")
    print(f"{len(train)} training and {len(test)} test images in {root}")


if __name__ == "__main__":
    main()
