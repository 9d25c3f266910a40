"""torchvision's side of `cargo xtask bench data`: the same transforms on the same files, with a
DataLoader of N worker processes. Prints one JSON line: {"images_per_second": ...}.

Colour shift and PCA lighting have no torchvision transform; they are written here on tensors
exactly as the Rust pipeline does them (per-channel normal offsets, sigma 0.05; AlexNet's PCA
lighting with ImageNet's published components, sigma 0.1).
"""

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
EIGVEC = torch.tensor(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
)


def colour_shift(x):
    return (x + torch.randn(3, 1, 1) * 0.05).clamp(0.0, 1.0)


def pca_lighting(x):
    alpha = torch.randn(3) * 0.1
    return x + (EIGVEC @ (alpha * EIGVAL)).view(3, 1, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--workload", choices=["cifar32", "jpeg224"], required=True)
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.workload == "cifar32":
        transform = transforms.Compose([
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        ])
    else:
        transform = transforms.Compose([
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Lambda(colour_shift),
            transforms.Lambda(pca_lighting),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ])
    dataset = datasets.ImageFolder(args.folder, transform=transform)
    step = max(len(dataset) // args.images, 1)
    dataset = Subset(dataset, list(range(0, len(dataset), step))[: args.images])
    loader = DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        prefetch_factor=2,
    )
    started = time.perf_counter()
    count = 0
    for images, _labels in loader:
        count += images.shape[0]
    elapsed = time.perf_counter() - started
    print(json.dumps({"images_per_second": count / elapsed, "images": count}))


if __name__ == "__main__":
    main()
