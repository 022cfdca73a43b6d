"""Python baseline for bench_streaming: the same workloads in PyTorch, written the way the Python
traceTorch library computes them (spec section 5.3: activations recomputed from raw parameters on
every access, a new tensor per op). Prints microseconds per step as JSON lines.

Python traceTorch itself is not installable here (no PyPI), so this re-implements its per-step
work in plain torch; the ops and their count follow the spec."""
import json
import sys
import time

import torch
from torch import nn

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)


class LI(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.raw_beta = nn.Parameter(torch.full([n], 2.1972245))
        self.mem = None

    def forward(self, x):
        if self.mem is None:
            self.mem = torch.zeros_like(x)
        self.mem = self.mem * torch.sigmoid(self.raw_beta) + x
        return self.mem


class LIB(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.raw_beta = nn.Parameter(torch.full([n], 2.1972245))
        self.raw_threshold = nn.Parameter(torch.full([n], 0.5413249))
        self.raw_bias = nn.Parameter(torch.zeros(n))
        self.mem = None

    def forward(self, x):
        if self.mem is None:
            self.mem = torch.zeros_like(x)
        mem = self.mem * torch.sigmoid(self.raw_beta) + x
        s = torch.sigmoid((mem - nn.functional.softplus(self.raw_threshold) + torch.asinh(self.raw_bias)) * 4.0)
        self.mem = mem - s * nn.functional.softplus(self.raw_threshold)
        return s


def timeit(fn, min_time=0.5):
    for _ in range(20):
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_time:
        for _ in range(50):
            fn()
        n += 50
    return (time.perf_counter() - start) / n * 1e6


def main():
    torch.manual_seed(0)
    with torch.no_grad():
        for batch in (1, 32):
            net = nn.Sequential(nn.Linear(784, 128), LIB(128), nn.Linear(128, 10), LI(10))
            x = torch.rand(batch, 784)
            print(json.dumps({"name": f"DemoNetworkStep/batch:{batch}/compiled:0", "us": timeit(lambda: net(x))}))
        for name, cls in (("LI", LI), ("LIB", LIB)):
            layer = cls(1024)
            x = torch.randn(1, 1024)
            print(json.dumps({"name": f"LayerStep/{name}/neurons:1024/batch:1", "us": timeit(lambda: layer(x))}))
        layer = LIB(1024)
        x = torch.randn(64, 1024)
        print(json.dumps({"name": "LayerStep/LIB/neurons:1024/batch:64", "us": timeit(lambda: layer(x))}))


main()
