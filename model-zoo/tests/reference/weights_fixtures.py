"""Writes the small torchvision fixtures of model-zoo/tests/weights.rs: the building blocks where
a key mapping or a number can go wrong (a BasicBlock, a Bottleneck with its downsample
projection, a VGG-BN feature stack, an Inception block with its pool branch, a linear head),
each with seeded random weights, BatchNorm running statistics moved off their defaults (eval
mode), an input and torch's output.

usage: python weights_fixtures.py  (torch + torchvision from PyPI; writes ../fixtures/weights/)
For each NAME: NAME.pth (state dict), NAME.json ({"keys", "input", "output", "torch"}),
NAME-input.f32 and NAME-output.f32 (raw little-endian float32, C order).
"""

import json
from pathlib import Path

import torch
from torch import nn
from torchvision.models.googlenet import Inception
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "weights"


def randomise_batch_norm(module, generator):
    for child in module.modules():
        if isinstance(child, nn.BatchNorm2d):
            child.running_mean.copy_(torch.rand(child.running_mean.shape, generator=generator) - 0.5)
            child.running_var.copy_(torch.rand(child.running_var.shape, generator=generator) + 0.5)
            child.weight.data.copy_(torch.rand(child.weight.shape, generator=generator) + 0.5)
            child.bias.data.copy_(torch.rand(child.bias.shape, generator=generator) - 0.5)


def write(name, module, input_shape):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    for parameter in module.parameters():
        parameter.data.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    randomise_batch_norm(module, generator)
    module.eval()
    x = torch.randn(input_shape, generator=generator)
    with torch.no_grad():
        y = module(x)
    torch.save(module.state_dict(), OUT / f"{name}.pth")
    x.numpy().astype("<f4").tofile(OUT / f"{name}-input.f32")
    y.numpy().astype("<f4").tofile(OUT / f"{name}-output.f32")
    record = {
        "keys": list(module.state_dict().keys()),
        "input": list(x.shape),
        "output": list(y.shape),
        "torch": torch.__version__,
    }
    (OUT / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write("basic_block", BasicBlock(8, 8), (2, 8, 6, 6))
    downsample = nn.Sequential(conv1x1(8, 16, 2), nn.BatchNorm2d(16))
    write("bottleneck", Bottleneck(8, 4, stride=2, downsample=downsample), (2, 8, 6, 6))
    vgg_bn = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
    )
    write("vgg_bn_features", vgg_bn, (2, 3, 8, 10))
    write("inception", Inception(16, 4, 4, 8, 2, 4, 4), (2, 16, 7, 7))
    write("linear_head", nn.Linear(16, 5), (3, 16))


if __name__ == "__main__":
    main()
