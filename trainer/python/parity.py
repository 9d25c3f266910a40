"""Writes what `cargo xtask parity` compares: for each torchvision model, a state dict of
seeded random weights (BatchNorm running statistics moved off their defaults, so eval mode
is exercised) and its eval-mode logits on seeded inputs, square and non-square.

usage: parity.py OUT_DIR MODEL [MODEL ...]
       parity.py --load-back OUT_DIR MODEL
OUT_DIR/<model>.pth        the state dict (torch.save)
OUT_DIR/<model>.json       {"inputs": [{"file", "shape"}], "logits": [{"file", "shape"}],
                            "torch": version, "torchvision": version}
OUT_DIR/<model>-*.f32      raw little-endian float32 arrays, C order

--load-back loads OUT_DIR/<model>.safetensors, written by the zoo, into the torchvision model with
load_state_dict(strict=True), reruns the inputs and prints {"max_rel_error": …} as JSON.
"""

import json
import sys
from pathlib import Path

import torch
import torchvision

INPUT_SHAPES = [(2, 3, 224, 224), (2, 3, 200, 256)]


def build(name, aux_logits=True):
    """The torchvision model; GoogLeNet with its auxiliary classifiers, which the zoo loads
    into a model without them (as torchvision's aux_logits=False does) and never saves."""
    torch.manual_seed(0)
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=aux_logits, init_weights=True)
    model = getattr(torchvision.models, name)(**kwargs).eval()
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model


def write(array, path):
    array.detach().contiguous().numpy().astype("<f4").tofile(path)


def read(path, shape):
    import numpy
    return torch.from_numpy(numpy.fromfile(path, dtype="<f4").reshape(shape))


def load_back(out, name):
    from safetensors.torch import load_file
    model = build(name, aux_logits=False)
    model.load_state_dict(load_file(out / f"{name}.safetensors"), strict=True)
    record = json.loads((out / f"{name}.json").read_text())
    worst = 0.0
    for inputs, logits in zip(record["inputs"], record["logits"]):
        x = read(out / inputs["file"], inputs["shape"])
        expected = read(out / logits["file"], logits["shape"])
        with torch.no_grad():
            y = model(x)
        worst = max(worst, float((y - expected).abs().max() / expected.abs().max()))
    print(json.dumps({"max_rel_error": worst}))


def main():
    if sys.argv[1] == "--load-back":
        load_back(Path(sys.argv[2]), sys.argv[3])
        return
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[2:]:
        model = build(name)
        torch.save(model.state_dict(), out / f"{name}.pth")
        record = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                  "inputs": [], "logits": []}
        generator = torch.Generator().manual_seed(2)
        for index, shape in enumerate(INPUT_SHAPES):
            x = torch.randn(shape, generator=generator)
            with torch.no_grad():
                y = model(x)
            for kind, tensor in (("inputs", x), ("logits", y)):
                file = f"{name}-{kind}-{index}.f32"
                write(tensor, out / file)
                record[kind].append({"file": file, "shape": list(tensor.shape)})
        (out / f"{name}.json").write_text(json.dumps(record, indent=1))
        print(name, flush=True)


if __name__ == "__main__":
    main()
