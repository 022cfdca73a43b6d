"""The distributed example under torchrun (Debian's python3-torch ships it as
`python3 -m torch.distributed.run`): examples/train_distributed trains a small spiking network on a
fixed global batch, and 1, 2 and 4 processes must give the same weights; Python loads the
checkpoint rank 0 wrote. Everything runs on 127.0.0.1 and every launch is bounded in time."""
import os
import socket
import subprocess
import sys
import tempfile

import torch

BUILD = os.environ.get("TT_BINARY_DIR", "build")
EXAMPLE = os.path.join(BUILD, "examples", "train_distributed")
LIMIT_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=LIMIT_S, env=env)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited with {p.returncode}:\n{p.stdout}")
    return p.stdout


def torchrun(nproc, args, log_dir):
    # -r 1 -t 1 (redirect and tee stdout): torch 1.13's launcher cannot parse its default "0"
    # under Python 3.11 (IntFlag no longer lists the zero member).
    return run([sys.executable, "-m", "torch.distributed.run", "--no_python", "--nproc_per_node", str(nproc),
                "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "--log_dir", log_dir,
                "-r", "1", "-t", "1", EXAMPLE] + args)


def main():
    if not os.path.exists(EXAMPLE):
        sys.exit(f"FAIL: {EXAMPLE} was not built")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    with tempfile.TemporaryDirectory() as d:
        args = ["--steps", "12", "--batch", "8", "--dataset", "64"]
        out1 = run([EXAMPLE] + args + ["--out", os.path.join(d, "w1.pt")], env=env)
        assert "1 processes" in out1, out1
        ref = torch.load(os.path.join(d, "w1.pt"))
        assert set(ref) >= {"0.weight", "0.bias", "2.weight", "2.bias"}, list(ref)
        for nproc in (2, 4):
            path = os.path.join(d, f"w{nproc}.pt")
            out = torchrun(nproc, args + ["--out", path], os.path.join(d, f"logs{nproc}"))
            assert f"{nproc} processes" in out, out
            got = torch.load(path)
            assert list(got) == list(ref), (list(got), list(ref))
            for k in ref:
                scale = ref[k].abs().max().item() or 1.0
                rel = (got[k].double() - ref[k].double()).abs().max().item() / scale
                assert rel <= 1e-5, f"{nproc} processes: {k} differs by {rel:.3g} (relative)"
            print(f"{nproc} processes under torchrun: same weights as one process")
        # The run moved the weights away from the (seeded) start: the comparison is not vacuous.
        run([EXAMPLE, "--steps", "0", "--batch", "8", "--dataset", "64", "--out", os.path.join(d, "w0.pt")], env=env)
        start = torch.load(os.path.join(d, "w0.pt"))
        assert (start["0.weight"] - ref["0.weight"]).abs().max().item() > 1e-3
    print("PASS")


if __name__ == "__main__":
    main()
