"""PyTorch's side of `cargo xtask bench models|train`: the same cases (model, batch, input size,
classes), timed the same way (a first step alone, warm-up steps, then the median of timed steps,
the device synchronised before each clock read). Prints one JSON line in the shape of
`benches::models::TorchResults`.

Models: torchvision's resnet*/vgg*/googlenet (aux heads off) and, written here to match the zoo,
LeNet-5 (tanh, average pooling, 61,706 parameters) and He et al.'s CIFAR ResNet-20 (option A:
zero-padded identity shortcuts, 269,722 parameters).

On a GPU three variants run: `fp32` (PyTorch's defaults, TF32 convolutions allowed),
`fp32-no-tf32`, and `bf16-channels-last` (autocast, channels-last memory format).
"""

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class LeNet5(nn.Module):
    def __init__(self, classes, channels, side):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        feature = ((side - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * feature * feature, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.tanh(self.fc1(x.flatten(1)))
        return self.fc3(torch.tanh(self.fc2(x)))


class CifarBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    def __init__(self, depth, classes, channels):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in [(16, 1), (32, 2), (64, 2)]:
            for i in range(n):
                blocks.append(CifarBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(name, classes, channels, side):
    if name == "lenet5":
        return LeNet5(classes, channels, side)
    if name.startswith("cifar-resnet"):
        return CifarResNet(int(name.removeprefix("cifar-resnet")), classes, channels)
    if name == "googlenet":
        return torchvision.models.googlenet(num_classes=classes, aux_logits=False, init_weights=True)
    return getattr(torchvision.models, name)(num_classes=classes)


def macs_per_image(model, shape, device):
    """Forward multiply-accumulates of convolutions and linear layers, counted by hooks."""
    total = 0

    def conv_hook(module, _inputs, output):
        nonlocal total
        kernel = module.weight[0].numel()
        total += output[0].numel() * kernel

    def linear_hook(module, _inputs, output):
        nonlocal total
        total += module.weight.numel()

    hooks = [
        m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, *shape, device=device))
    for hook in hooks:
        hook.remove()
    return total


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_steps(step, device, warmup, steps):
    timings = []
    for _ in range(1 + warmup + steps):
        started = time.perf_counter()
        step()
        synchronize(device)
        timings.append(time.perf_counter() - started)
    return timings[0], sum(timings[: warmup + 1]), statistics.median(timings[1 + warmup :])


def measure(case, mode, device, variant, warmup, steps):
    channels, height, width = case["input"]
    torch.manual_seed(0)
    model = build(case["model"], case["classes"], channels, height).to(device)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = macs_per_image(model, (channels, height, width), device)
    images = torch.randn(case["batch"], channels, height, width, device=device)
    labels = torch.arange(case["batch"], device=device) % case["classes"]
    channels_last = variant == "bf16-channels-last"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=channels_last)
    if mode == "train":
        model.train()
        optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            optim.zero_grad(set_to_none=True)
            with autocast:
                loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optim.step()

    else:
        model.eval()

        def step():
            with torch.no_grad(), autocast:
                model(images)

    first, warm, median = time_steps(step, device, warmup, steps)
    rate = case["batch"] / median
    factor = 3 if mode == "train" else 1
    return {
        "model": case["model"],
        "batch": case["batch"],
        "input": case["input"],
        "mode": mode,
        "backend": f"torch-{device}",
        "variant": variant,
        "params": params,
        "macs_per_image": macs,
        "first_step_s": first,
        "warmup_s": warm,
        "step_s": median,
        "images_per_second": rate,
        "gflops": 2 * macs * factor * rate / 1e9,
    }


def matmul_peak(device):
    """Plain fp32 matrix-product rate (TF32 off), GFLOP/s: sgemm on a CPU, the fp32 units on a GPU."""
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 2048 if device == "cpu" else 8192
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    synchronize(device)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        a @ b
        synchronize(device)
        timings.append(time.perf_counter() - started)
    return 2 * n**3 / statistics.median(timings) / 1e9


def cpu_name():
    """The CPU's model name, family and model numbers (a VM may show only "AMD EPYC") and the
    threads PyTorch uses: the ratios to the zoo differ between CPUs (PyTorch's matrix products
    are much slower on some), so each result says which it was."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return f"{name}, {torch.get_num_threads()} threads"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", required=True, help="JSON list of {model, batch, input, classes}")
    parser.add_argument("--mode", choices=["infer", "train"], required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name()
        variants = ["fp32", "fp32-no-tf32", "bf16-channels-last"]
    else:
        name = cpu_name()
        variants = ["fp32"]
    rows = []
    for case in json.loads(args.cases):
        for variant in variants:
            tf32 = variant != "fp32-no-tf32"
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            rows.append(measure(case, args.mode, args.device, variant, args.warmup, args.steps))
            print(
                f"{case['model']} b{case['batch']} {variant}: "
                f"{rows[-1]['images_per_second']:.1f} images/s",
                flush=True,
            )
    result = {
        "rows": rows,
        "device": args.device,
        "device_name": name,
        "peak_fp32_gflops": matmul_peak(args.device),
        "torch_version": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
