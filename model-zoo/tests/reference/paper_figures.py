"""Parameter counts and MACs of the zoo's networks that torchvision lacks, computed by plain
arithmetic from the papers' layer tables (no deep-learning library involved): the outside
reference for those rows of `model-zoo/tests/figures.rs`.

    python3 model-zoo/tests/reference/paper_figures.py
"""


class Net:
    def __init__(self):
        self.params = 0
        self.macs = 0

    def conv(self, c_in, c_out, k, out_side, groups=1, bias=True, bn=False):
        self.params += c_out * (c_in // groups) * k * k + (c_out if bias else 0)
        self.params += 2 * c_out if bn else 0
        self.macs += out_side * out_side * c_out * (c_in // groups) * k * k

    def fc(self, d_in, d_out):
        self.params += d_in * d_out + d_out
        self.macs += d_in * d_out


def lenet5():
    n = Net()
    n.conv(1, 6, 5, 28)
    n.conv(6, 16, 5, 10)
    n.fc(400, 120), n.fc(120, 84), n.fc(84, 10)
    return n


def alexnet(paper):
    # 227 -> conv1 55 -> pool 27 -> conv2 27 -> pool 13 -> conv3-5 13 -> pool 6
    n = Net()
    g = 2 if paper else 1
    n.conv(3, 96, 11, 55)
    n.conv(96, 256, 5, 27, groups=g)
    n.conv(256, 384, 3, 13)
    n.conv(384, 384, 3, 13, groups=g)
    n.conv(384, 256, 3, 13, groups=g)
    n.fc(9216, 4096), n.fc(4096, 4096), n.fc(4096, 1000)
    return n


def cifar_resnet(depth, projection=False, residual=True):
    # He et al. 2016 section 4.2: 16, 32, 64 filters on 32, 16, 8 maps; no conv bias, BN after each.
    n = Net()
    blocks = (depth - 2) // 6
    n.conv(3, 16, 3, 32, bias=False, bn=True)
    c_in = 16
    for planes, side in [(16, 32), (32, 16), (64, 8)]:
        for _ in range(blocks):
            n.conv(c_in, planes, 3, side, bias=False, bn=True)
            n.conv(planes, planes, 3, side, bias=False, bn=True)
            if residual and projection and c_in != planes:
                n.conv(c_in, planes, 1, side, bias=False, bn=True)
            c_in = planes
    n.fc(64, 10)
    return n


def nin():
    # 224 -> 54 -> pool 26 -> pool 12 -> pool 5
    n = Net()
    for c_in, c, k, side in [(3, 96, 11, 54), (96, 256, 5, 26), (256, 384, 3, 12), (384, 1024, 3, 5)]:
        last = 1000 if c == 1024 else c
        n.conv(c_in, c, k, side), n.conv(c, c, 1, side), n.conv(c, last, 1, side)
    return n


def nin_cifar():
    n = Net()
    n.conv(3, 192, 5, 32), n.conv(192, 160, 1, 32), n.conv(160, 96, 1, 32)
    n.conv(96, 192, 5, 16), n.conv(192, 192, 1, 16), n.conv(192, 192, 1, 16)
    n.conv(192, 192, 3, 8), n.conv(192, 192, 1, 8), n.conv(192, 10, 1, 8)
    return n


def googlenet_paper():
    # Szegedy et al. 2014, Table 1: 224 -> 112 -> 56 -> 28 -> 14 -> 7; bias, no BN, true 5x5.
    n = Net()
    n.conv(3, 64, 7, 112)
    n.conv(64, 64, 1, 56), n.conv(64, 192, 3, 56)
    table = [
        (28, 192, 64, 96, 128, 16, 32, 32), (28, 256, 128, 128, 192, 32, 96, 64),
        (14, 480, 192, 96, 208, 16, 48, 64), (14, 512, 160, 112, 224, 24, 64, 64),
        (14, 512, 128, 128, 256, 24, 64, 64), (14, 512, 112, 144, 288, 32, 64, 64),
        (14, 528, 256, 160, 320, 32, 128, 128), (7, 832, 256, 160, 320, 32, 128, 128),
        (7, 832, 384, 192, 384, 48, 128, 128),
    ]
    for side, c, c1, c3r, c3, c5r, c5, pp in table:
        n.conv(c, c1, 1, side)
        n.conv(c, c3r, 1, side), n.conv(c3r, c3, 3, side)
        n.conv(c, c5r, 1, side), n.conv(c5r, c5, 5, side)
        n.conv(c, pp, 1, side)
    n.fc(1024, 1000)
    return n


def report(name, net):
    print(f"{name}: params {net.params}, macs {net.macs}")


report("lenet5", lenet5())
report("alexnet-course", alexnet(paper=False))
report("alexnet-paper", alexnet(paper=True))
for depth in [20, 32, 44, 56, 110]:
    report(f"cifar-resnet{depth}", cifar_resnet(depth))
    report(f"cifar-resnet{depth} option B", cifar_resnet(depth, projection=True))
    report(f"plain-cifar-resnet{depth}", cifar_resnet(depth, residual=False))
report("nin", nin())
report("nin-cifar", nin_cifar())
report("googlenet-paper", googlenet_paper())
