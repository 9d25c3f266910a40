"""PyTorch's side of a recipe check: He et al.'s CIFAR ResNet-20 recipe (the `cifar-resnet20`
recipe's settings), trained by PyTorch on the same image folder the zoo trains on, so that a
test top-1 the zoo reaches can be read against what PyTorch reaches on the same images.

The same model as `torch_bench.CifarResNet` (option A shortcuts, He-normal convolutions with
fan-out as the zoo's), the same data (the folder's JPEGs decoded with Pillow, pad-4 zero-padded
random crop and mirror, CIFAR-10's channel mean and std), SGD 0.1 with momentum 0.9 and weight
decay 1e-4 on every parameter, batch 128, and the learning rate ×0.1 at the given iterations.
`--epochs 164 --milestones 32000,48000` is the paper's schedule; shorter schedules scale it.

Prints one CSV row per epoch (epoch, lr, train loss, train top-1, test loss, test top-1, seconds)
and writes them to `--out` when given. With `--checkpoint FILE` the state after each epoch
(weights, optimiser, schedule, generators, rows) is saved there, and the same command run again
goes on from it: the full schedule is about three hours on two CPU cores.
"""

import argparse
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_bench import CifarResNet  # noqa: E402

# CIFAR-10's channel statistics, as `data::transforms::Normalize::cifar10`.
MEAN = torch.tensor((0.4914, 0.4822, 0.4465)).view(1, 3, 1, 1)
STD = torch.tensor((0.2470, 0.2435, 0.2616)).view(1, 3, 1, 1)
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp"}


def load_split(folder):
    """Every image of `folder/<class>/` as one uint8 N×3×H×W array, classes in sorted order."""
    if not folder.is_dir():
        sys.exit(f"{folder}: not a folder (expected one subfolder of images per class)")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        sys.exit(f"{folder}: no class folders")
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() in EXTENSIONS:
                try:
                    images.append(np.asarray(Image.open(path).convert("RGB")))
                except OSError as error:
                    sys.exit(f"{path}: not a readable image ({error})")
                labels.append(label)
    if len({image.shape for image in images}) > 1:
        sys.exit(f"{folder}: images of more than one size")
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels)


def normalise(batch):
    return (batch.float() / 255 - MEAN) / STD


def augment(batch, generator):
    """Pad 4 pixels of zeros on each side, crop back at a random offset, mirror half."""
    n, _, h, w = batch.shape
    padded = F.pad(batch, (4, 4, 4, 4))
    offsets = torch.randint(0, 9, (n, 2), generator=generator)
    crops = torch.stack([padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(offsets.tolist())])
    mirror = torch.rand(n, generator=generator) < 0.5
    return torch.where(mirror.view(n, 1, 1, 1), crops.flip(3), crops)


def evaluate(model, images, labels, batch_size):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(normalise(images[start : start + batch_size]))
            target = labels[start : start + batch_size]
            loss += F.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(1) == target).sum().item()
    return loss / len(images), correct / len(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=pathlib.Path, help="folder with train/ and test/")
    parser.add_argument("--epochs", type=int, default=164)
    parser.add_argument("--milestones", default="32000,48000", help="iterations of each ÷10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=pathlib.Path, help="CSV file for the per-epoch rows")
    parser.add_argument("--checkpoint", type=pathlib.Path, help="state to save each epoch and resume from")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    started = time.perf_counter()
    train_images, train_labels = load_split(args.dataset / "train")
    test_images, test_labels = load_split(args.dataset / "test")
    print(
        f"# {len(train_images)} train and {len(test_images)} test images decoded in "
        f"{time.perf_counter() - started:.1f} s; torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )

    model = CifarResNet(20, 10, 3)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    milestones = [int(m) for m in args.milestones.split(",") if m]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)

    rows = ["epoch,lr,train_loss,train_top1,test_loss,test_top1,seconds"]
    first_epoch = 1
    if args.checkpoint and args.checkpoint.is_file():
        try:
            state = torch.load(args.checkpoint, weights_only=False)
        except Exception as error:
            sys.exit(f"{args.checkpoint}: not a checkpoint this script can read ({error})")
        if state["args"] != (args.epochs, args.milestones, args.batch_size, args.seed):
            sys.exit(f"{args.checkpoint}: saved by a run with other --epochs/--milestones/--batch-size/--seed")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        rows = state["rows"]
        first_epoch = len(rows)
        print(f"# resuming {args.checkpoint} at epoch {first_epoch}", flush=True)
    print("\n".join(rows), flush=True)
    for epoch in range(first_epoch, args.epochs + 1):
        model.train()
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        order = torch.randperm(len(train_images), generator=generator)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), args.batch_size):
            index = order[start : start + args.batch_size]
            inputs = normalise(augment(train_images[index], generator))
            target = train_labels[index]
            logits = model(inputs)
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(index)
            correct += (logits.argmax(1) == target).sum().item()
        seconds = time.perf_counter() - started
        test_loss, test_top1 = evaluate(model, test_images, test_labels, 500)
        rows.append(
            f"{epoch},{lr:.1e},{loss_sum / len(order):.4f},{correct / len(order):.4f},"
            f"{test_loss:.4f},{test_top1:.4f},{seconds:.1f}"
        )
        print(rows[-1], flush=True)
        if args.out:
            args.out.write_text("\n".join(rows) + "\n")
        if args.checkpoint:
            state = {
                "args": (args.epochs, args.milestones, args.batch_size, args.seed),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "rows": rows,
            }
            partial = args.checkpoint.with_suffix(".partial")
            torch.save(state, partial)
            partial.replace(args.checkpoint)


if __name__ == "__main__":
    main()
