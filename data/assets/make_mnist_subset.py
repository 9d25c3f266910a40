"""Writes the embedded default dataset: the first 8,000 training and 2,000 test digits of MNIST
(LeCun, Cortes, Burges; CC BY-SA 3.0), kept in the canonical IDX format, gzip-compressed.

    python3 data/assets/make_mnist_subset.py ../shared/datasets/mnist data/assets/mnist-subset
"""

import gzip
import struct
import sys
from pathlib import Path

TRAIN, TEST = 8000, 2000


def subset(source: Path, target: Path, count: int) -> None:
    data = gzip.decompress(source.read_bytes())
    rank = data[3]
    dims = list(struct.unpack(f">{rank}I", data[4 : 4 + 4 * rank]))
    per_item = 1
    for d in dims[1:]:
        per_item *= d
    header = data[:4] + struct.pack(f">{rank}I", count, *dims[1:])
    body = data[4 + 4 * rank : 4 + 4 * rank + count * per_item]
    target.write_bytes(gzip.compress(header + body, compresslevel=9, mtime=0))


source, target = Path(sys.argv[1]), Path(sys.argv[2])
target.mkdir(parents=True, exist_ok=True)
for prefix, count in [("train", TRAIN), ("t10k", TEST)]:
    for kind in ["images-idx3", "labels-idx1"]:
        name = f"{prefix}-{kind}-ubyte.gz"
        subset(source / name, target / name, count)
