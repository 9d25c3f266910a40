"""PyTorch's autocast error on one training step, the reference for the zoo's mixed-precision
tolerances (`trainer/tests/precision.rs`): how far a bf16 or fp16 step's loss and gradients land
from the f32 step's, on the same model, batch and labels as the Rust test (eight N(0, 1) images,
labels 0..7, a freshly initialised model in training mode), for several seeds.

The gradient error is ‖g_half − g_f32‖ / ‖g_f32‖ over all parameters together, and for the worst
single parameter. Deep batch-normalised networks amplify rounding on the way back, so ResNet-20's
first layers are tens of percent off in bf16 under PyTorch too.

    python3 benches/python/autocast_reference.py --model cifar-resnet20 --seeds 4
"""

import argparse

import torch
import torch.nn.functional as F

from torch_bench import build


def step(model, images, labels, dtype):
    model.zero_grad()
    if dtype is None:
        logits = model(images)
    else:
        with torch.autocast("cpu", dtype=dtype):
            logits = model(images)
    loss = F.cross_entropy(logits.float(), labels)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


def relative(a, b):
    return ((a - b).norm() / b.norm()).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar-resnet20")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    channels = 1 if args.model == "lenet5" else 3
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        model = build(args.model, 10, channels, 32)
        images = torch.randn(8, channels, 32, 32)
        labels = torch.arange(8)
        loss32, grads32 = step(model, images, labels, None)
        whole32 = torch.cat([g.flatten() for g in grads32])
        for name, dtype in [("bf16", torch.bfloat16), ("fp16", torch.float16)]:
            loss, grads = step(model, images, labels, dtype)
            whole = torch.cat([g.flatten() for g in grads])
            worst = max(relative(g, r) for g, r in zip(grads, grads32))
            print(
                f"{args.model} seed {seed} {name}: loss {abs(loss - loss32) / loss32:.1e} off, "
                f"gradients {relative(whole, whole32):.3f} off (worst parameter {worst:.3f})"
            )


if __name__ == "__main__":
    main()
