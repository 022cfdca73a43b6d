"""`tracetorch inspect|diff|filter|rename|convert` on files Python writes: plain state_dicts
(OrderedDict pickles), hand-written checkpoints (a sub-dict picked with --key), torch_rc-style
files; --json output, exit codes, and files Python reads back."""
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict

import torch

BUILD = os.environ.get("TT_BINARY_DIR", "build")
CLI = os.path.join(BUILD, "tools", "tracetorch")


def cli(*args):
    p = subprocess.run([CLI, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        sd = net.state_dict()
        plain = os.path.join(d, "plain.pt")
        torch.save(sd, plain)

        # inspect: statistics against Python's own, NaN/Inf counted and left out of min/max/mean.
        odd = OrderedDict(w=torch.tensor([1.0, float("nan"), -2.0, float("inf")]), i=torch.arange(6).reshape(2, 3))
        torch.save(odd, os.path.join(d, "odd.pt"))
        rc, out, err = cli("inspect", os.path.join(d, "odd.pt"), "--json")
        check(rc == 0, f"inspect rc {rc}: {err}")
        doc = json.loads(out)
        w, i = doc["keys"]
        check(w["key"] == "w" and w["nan"] == 1 and w["inf"] == 1 and w["min"] == -2.0 and w["max"] == 1.0, w)
        check(w["mean"] == -0.5 and w["bytes"] == 16 and w["dtype"] == "float32", w)
        check(i["shape"] == [2, 3] and i["dtype"] == "int64" and i["mean"] == 2.5 and i["bytes"] == 48, i)
        check(doc["total"]["tensors"] == 2 and doc["total"]["numel"] == 10, doc["total"])
        rc, out, _ = cli("inspect", plain)
        check(rc == 0 and "0.weight" in out and "total: 4 tensors" in out, out)

        # diff: equal within tolerance, different beyond it, keys on one side, shape mismatches.
        near = OrderedDict((k, v + 1e-7) for k, v in sd.items())
        torch.save(near, os.path.join(d, "near.pt"))
        rc, out, _ = cli("diff", plain, os.path.join(d, "near.pt"), "--atol", "1e-6")
        check(rc == 0 and "equal" in out, f"diff near: {rc} {out}")
        far = OrderedDict(sd)
        far["2.bias"] = sd["2.bias"] + 0.5
        del far["0.bias"]
        far["extra"] = torch.zeros(1)
        far["2.weight"] = torch.zeros(3, 3)
        torch.save(far, os.path.join(d, "far.pt"))
        rc, out, _ = cli("diff", plain, os.path.join(d, "far.pt"), "--json")
        check(rc == 1, f"diff far rc {rc}")
        doc = json.loads(out)
        check(doc["only_in_a"] == ["0.bias"] and doc["only_in_b"] == ["extra"] and not doc["equal"], doc)
        keys = {k["key"]: k for k in doc["keys"]}
        check(abs(keys["2.bias"]["max_abs"] - 0.5) < 1e-6 and not keys["2.bias"]["close"], keys["2.bias"])
        check(keys["2.weight"]["problem"] == "shape [2, 4] vs [3, 3]", keys["2.weight"])
        check(keys["0.weight"]["close"] and keys["0.weight"]["max_abs"] == 0, keys["0.weight"])
        rc, _, err = cli("diff", plain, os.path.join(d, "missing.pt"))
        check(rc == 2 and "no such file" in err, f"diff missing: {rc} {err}")

        # A checkpoint: the model's sub-dict by default, another entry with --key.
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        net(torch.ones(1, 3)).sum().backward()
        opt.step()
        ck = os.path.join(d, "ck.pt")
        torch.save({"epoch": 1, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict()}, ck)
        rc, out, _ = cli("inspect", ck, "--json")
        check(rc == 0 and [k["key"] for k in json.loads(out)["keys"]] == list(sd), out)
        rc, out, _ = cli("inspect", ck, "--key", "optimizer_state_dict", "--json")
        check(rc == 0 and json.loads(out)["keys"][0]["key"] == "state.0.momentum_buffer", out)
        rc, _, err = cli("inspect", ck, "--key", "nope")
        check(rc == 1 and "no entry 'nope'" in err and "model_state_dict" in err, err)

        # A torch_rc ESN file: {'state_dict', 'metadata', 'reservoir_states'}.
        rc_file = os.path.join(d, "esn.pt")
        torch.save({"state_dict": OrderedDict(readout=torch.ones(2, 2)), "metadata": {},
                    "reservoir_states": {"0": torch.zeros(1, 5)}}, rc_file)
        rc, out, _ = cli("inspect", rc_file, "--key", "reservoir_states", "--json")
        check(rc == 0 and json.loads(out)["keys"][0]["shape"] == [1, 5], out)

        # rename: strip and add prefixes; Python loads the result.
        wrapped = OrderedDict(("module." + k, v) for k, v in sd.items())
        torch.save(wrapped, os.path.join(d, "wrapped.pt"))
        out_path = os.path.join(d, "stripped.pt")
        rc, out, _ = cli("rename", os.path.join(d, "wrapped.pt"), "--from", "module.", "--to", "", "-o", out_path)
        check(rc == 0 and "renamed 4 of 4" in out, out)
        fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        fresh.load_state_dict(torch.load(out_path))
        check(all(torch.equal(fresh.state_dict()[k], v) for k, v in sd.items()), "rename round trip")
        rc, _, err = cli("rename", plain, "--from", "0.", "--to", "2.", "-o", os.path.join(d, "x.pt"))
        check(rc == 1 and "both become" in err, err)

        # convert: floating tensors only.
        out_path = os.path.join(d, "half.pt")
        torch.save(OrderedDict(w=torch.randn(3), n=torch.arange(3)), os.path.join(d, "mixed.pt"))
        rc, out, _ = cli("convert", os.path.join(d, "mixed.pt"), "--dtype", "float16", "-o", out_path)
        half = torch.load(out_path)
        check(rc == 0 and half["w"].dtype == torch.float16 and half["n"].dtype == torch.int64, (out, half))
        rc, _, err = cli("convert", plain, "--dtype", "int8", "-o", out_path)
        check(rc == 1 and "float16" in err, err)

        # filter: transfer learning into a model with a different head.
        arch = {"format": "tt-arch/1", "model": {"type": "Sequential", "children": [
            {"type": "Linear", "in_features": 3, "out_features": 4, "bias": True},
            {"type": "Linear", "in_features": 4, "out_features": 5, "bias": True}]}}
        with open(os.path.join(d, "arch.json"), "w") as f:
            json.dump(arch, f)
        out_path = os.path.join(d, "kept.pt")
        # Our arch names the second Linear "1"; rename Python's "2." first.
        cli("rename", ck, "--from", "2.", "--to", "1.", "-o", os.path.join(d, "renamed.pt"))
        rc, out, _ = cli("filter", os.path.join(d, "renamed.pt"), "--arch", os.path.join(d, "arch.json"), "-o", out_path, "--json")
        check(rc == 0, out)
        doc = json.loads(out)
        check(doc["kept"] == ["0.weight", "0.bias"], doc)
        check(doc["skipped"] == [{"key": "1.weight", "reason": "shape [2, 4] vs the model's [5, 4]"},
                                 {"key": "1.bias", "reason": "shape [2] vs the model's [5]"}], doc)
        check(doc["missing"] == ["1.weight", "1.bias"], doc)
        check(list(torch.load(out_path)) == ["0.weight", "0.bias"], "filter output")
        rc, _, err = cli("filter", plain, "-o", out_path)
        check(rc != 0 and "--arch or --like" in err, err)
    print("ok")


if __name__ == "__main__":
    main()
