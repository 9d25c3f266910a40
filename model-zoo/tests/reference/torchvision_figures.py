"""Parameter counts and MACs of torchvision's models, the outside reference for
`model-zoo/tests/figures.rs`.

MACs follow torchvision's "GFLOPS" convention: a convolution costs output elements x
k_h*k_w*C_in/groups, a linear layer in x out; nothing else counts. Plain twins are the residual
networks with every projection shortcut removed.

    python3 -m venv .venv && .venv/bin/pip install torch torchvision
    .venv/bin/python model-zoo/tests/reference/torchvision_figures.py
"""

import torch
import torchvision.models as tvm


def macs(model, size, skip=()):
    """MACs of one forward pass at size x size, leaving out the convolutions in `skip`."""
    total = 0
    skipped = {id(module) for module in skip}

    def conv_hook(module, _inputs, output):
        nonlocal total
        if id(module) in skipped:
            return
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += output[0].numel() * k

    def linear_hook(module, _inputs, _output):
        nonlocal total
        total += module.in_features * module.out_features

    hooks = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return total


def params(model):
    return sum(p.numel() for p in model.parameters())


def projections(model):
    return [
        module.downsample
        for module in model.modules()
        if getattr(module, "downsample", None) is not None
    ]


NAMES = [
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
]

for name in NAMES:
    model = getattr(tvm, name)(weights=None)
    print(f"{name}: params {params(model)}, macs {macs(model, 224)}")
    if name.startswith("resnet"):
        shortcut = projections(model)
        plain_params = params(model) - sum(params(p) for p in shortcut)
        plain_macs = macs(model, 224, skip=[m for p in shortcut for m in p.modules()])
        print(f"plain-{name}: params {plain_params}, macs {plain_macs}")

googlenet = tvm.googlenet(weights=None, aux_logits=False, init_weights=False)
print(f"googlenet: params {params(googlenet)}, macs {macs(googlenet, 224)}")
with_aux = tvm.googlenet(weights=None, aux_logits=True, init_weights=False)
print(f"googlenet with aux: params {params(with_aux)}")
