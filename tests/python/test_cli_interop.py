"""Python side of the interop tests: Python writes the files, the C++ `tracetorch run` program
runs the model, Python reads the results back and checks them against its own computation of the
spec's equations (Linear -> LIB -> Linear -> LI, spec 5.3)."""
import json
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict

import torch

BUILD = os.environ.get("TT_BINARY_DIR", "build")
CLI = os.path.join(BUILD, "tools", "tracetorch")


def reference(sd, x):
    """The spec's equations written out in plain torch (activations from the raw parameters)."""
    beta1 = torch.sigmoid(sd["1.raw_beta"])
    theta1 = torch.nn.functional.softplus(sd["1.raw_threshold"])
    bias1 = torch.asinh(sd["1.raw_bias"])
    beta3 = torch.sigmoid(sd["3.raw_beta"])
    mem1 = mem3 = None
    outs = []
    for t in range(x.shape[0]):
        h = torch.nn.functional.linear(x[t], sd["0.weight"], sd["0.bias"])
        mem1 = torch.zeros_like(h) if mem1 is None else mem1
        mem1 = mem1 * beta1 + h
        s = torch.sigmoid((mem1 - theta1 + bias1) * 4.0)
        mem1 = mem1 - s * theta1
        h = torch.nn.functional.linear(s, sd["2.weight"], sd["2.bias"])
        mem3 = torch.zeros_like(h) if mem3 is None else mem3
        mem3 = mem3 * beta3 + h
        outs.append(mem3)
    return torch.stack(outs), {"1.mem": mem1, "3.mem": mem3}


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        arch = {"format": "tt-arch/1", "model": {"type": "Sequential", "children": [
            {"type": "Linear", "in_features": 6, "out_features": 5, "bias": True},
            {"type": "snn.LIB", "num_neurons": 5, "beta": 0.8, "threshold": 0.7},
            {"type": "Linear", "in_features": 5, "out_features": 3, "bias": True},
            {"type": "snn.LI", "num_neurons": 3, "beta_rank": 0},
        ]}}
        with open(os.path.join(d, "arch.json"), "w") as f:
            json.dump(arch, f)
        sd = OrderedDict()
        sd["0.weight"] = torch.randn(5, 6)
        sd["0.bias"] = torch.randn(5)
        sd["1.raw_beta"] = torch.logit(torch.rand(5) * 0.5 + 0.4)
        sd["1.raw_threshold"] = torch.randn(5)
        sd["1.raw_bias"] = torch.randn(5) * 0.2
        sd["2.weight"] = torch.randn(3, 5)
        sd["2.bias"] = torch.randn(3)
        sd["3.raw_beta"] = torch.tensor(1.5)
        torch.save(sd, os.path.join(d, "weights.pt"))  # a real OrderedDict pickle
        x = torch.randn(10, 4, 6)
        torch.save(x.transpose(1, 2).contiguous().transpose(1, 2), os.path.join(d, "inputs.pt"))  # non-contiguous

        subprocess.run([CLI, "run", "--threads", "1", "--arch", os.path.join(d, "arch.json"),
                        "--weights", os.path.join(d, "weights.pt"), "--inputs", os.path.join(d, "inputs.pt"),
                        "--outputs", os.path.join(d, "out.pt"), "--save-states", os.path.join(d, "states.pt"),
                        "--python-aliases"], check=True)
        out = torch.load(os.path.join(d, "out.pt"))
        states = torch.load(os.path.join(d, "states.pt"))
        want, want_states = reference(sd, x)
        assert out.shape == want.shape, (out.shape, want.shape)
        assert torch.allclose(out, want, atol=1e-5, rtol=1e-5), (out - want).abs().max()
        # canonical and alias keys, as Python traceTorch writes them
        assert sorted(states) == sorted(["1.mem", "._modules[1].mem", "3.mem", "._modules[3].mem"]), sorted(states)
        for k, v in want_states.items():
            assert torch.allclose(states[k], v, atol=1e-5, rtol=1e-5), k

        # A broken weights file gives a one-line error and exit code 1, not a crash.
        with open(os.path.join(d, "bad.pt"), "wb") as f:
            f.write(b"PK\x03\x04 this is not a real archive")
        r = subprocess.run([CLI, "run", "--arch", os.path.join(d, "arch.json"), "--weights", os.path.join(d, "bad.pt"),
                            "--inputs", os.path.join(d, "inputs.pt")], capture_output=True, text=True)
        assert r.returncode == 1, r
        assert r.stderr.startswith("tracetorch: error: ") and r.stderr.count("\n") == 1, r.stderr
        assert "bad.pt" in r.stderr, r.stderr
    print("1 passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("assertion failed:", e)
        sys.exit(1)
