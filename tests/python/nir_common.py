"""Shared by the NIR interop tests: find the reference `nir` package (skip when absent), run a
graph through `tracetorch run --nir`, and the NIR equations written out in numpy, independently of
the C++ code (one step of each primitive under forward Euler or exact exponential decay)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

BUILD = os.environ.get("TT_BINARY_DIR", "build")
CLI = os.path.join(BUILD, "tools", "tracetorch")


def import_nir():
    """The reference package from ../shared/reference, or exit 0 with a message (users outside
    this repository do not have it)."""
    shared = os.environ.get("TT_SHARED_DIR") or os.path.join(os.environ.get("TT_SOURCE_DIR", "."), "..", "shared")
    path = os.path.join(shared, "reference", "nir-7232ada")
    if not os.path.isdir(os.path.join(path, "nir")):
        print("SKIP: the reference nir package is not in", path)
        sys.exit(0)
    try:
        import h5py  # noqa: F401
    except ImportError:
        print("SKIP: python3-h5py is not installed")
        sys.exit(0)
    sys.path.insert(0, path)
    import nir
    return nir


def run_cli(nir_path, x, dt, discretisation="euler", extra=()):
    """Runs `tracetorch run --nir` over time-major inputs x (numpy); returns the outputs (numpy)."""
    with tempfile.TemporaryDirectory() as d:
        inputs, outputs = os.path.join(d, "x.pt"), os.path.join(d, "y.pt")
        torch.save(torch.from_numpy(np.ascontiguousarray(x)), inputs)
        cmd = [CLI, "run", "--threads", "1", "--nir", nir_path, "--dt", repr(dt), "--discretisation", discretisation,
               "--dtype", "float64", "--inputs", inputs, "--outputs", outputs, *extra]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed: {r.stderr}")
        return torch.load(outputs).numpy()


def run_graph(nir, graph, x, dt, discretisation="euler"):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "g.nir")
        nir.write(path, graph)
        return run_cli(path, x, dt, discretisation)


def cli_error(nir_path, x, dt=1e-3):
    """(exit code, stderr) of running a file expected to be refused."""
    with tempfile.TemporaryDirectory() as d:
        inputs = os.path.join(d, "x.pt")
        torch.save(torch.from_numpy(x), inputs)
        r = subprocess.run([CLI, "run", "--nir", nir_path, "--dt", repr(dt), "--inputs", inputs],
                           capture_output=True, text=True)
        return r.returncode, r.stderr


# ---- the NIR equations, one step, in numpy ----------------------------------------------------

def decay(dt, tau, exact):
    """(coefficient on the state, coefficient on the target) of one step of tau dv/dt = target - v."""
    if exact:
        e = np.exp(-(dt / tau))
        return e, 1.0 - e
    a = dt / tau
    return 1.0 - a, a


class NeuronRef:
    """A NIR neuron node (I, IF, LI, LIF, CubaLI, CubaLIF) stepped in numpy."""

    def __init__(self, kind, params, dt, exact=False):
        self.kind, self.p, self.dt, self.exact = kind, {k: np.asarray(v, np.float64) for k, v in params.items()}, dt, exact
        self.v = None
        self.i = None
        self.margin = np.inf  # closest approach of v to the threshold (a tie would make spikes fragile)

    def step(self, x):
        p, dt = self.p, self.dt
        if self.v is None:
            self.v = np.zeros_like(x)
            self.i = np.zeros_like(x)
        drive = x
        if self.kind.startswith("Cuba"):
            w_in = p.get("w_in", 1.0)
            if self.exact:
                keep, take = decay(dt, p["tau_syn"], True)
                self.i = self.i * keep + take * (w_in * x)
            else:
                self.i = self.i + (dt / p["tau_syn"]) * (w_in * x - self.i)
            drive = self.i
        if self.kind in ("I", "IF"):
            v = self.v + (dt * p["r"]) * drive
        else:
            tau = p["tau_mem"] if self.kind.startswith("Cuba") else p["tau"]
            if self.exact:
                keep, take = decay(dt, tau, True)
                v = (p["v_leak"] + (self.v - p["v_leak"]) * keep) + take * (p["r"] * drive)
            else:
                v = self.v + (dt / tau) * ((p["v_leak"] - self.v) + p["r"] * drive)
        if self.kind in ("IF", "LIF", "CubaLIF"):
            self.margin = min(self.margin, float(np.abs(v - p["v_threshold"]).min()))
            z = (v > p["v_threshold"]).astype(np.float64)
            self.v = np.where(z > 0, p.get("v_reset", 0.0) + 0 * v, v)
            return z
        self.v = v
        return v


def affine(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def conv_nd(x, w, b, stride, padding, dilation, groups):
    """Cross-correlation as torch's Conv1d / Conv2d, x [B, C, *spatial], written with slices."""
    nd = w.ndim - 2
    stride, padding, dilation = [np.broadcast_to(np.asarray(v), (nd,)).astype(int) for v in (stride, padding, dilation)]
    pad = [(0, 0), (0, 0)] + [(int(p), int(p)) for p in padding]
    xp = np.pad(x, pad)
    kernel = w.shape[2:]
    out_len = [(xp.shape[2 + k] - dilation[k] * (kernel[k] - 1) - 1) // stride[k] + 1 for k in range(nd)]
    out_c, in_per_group = w.shape[0], w.shape[1]
    y = np.zeros((x.shape[0], out_c, *out_len))
    per_out = out_c // groups
    for g in range(groups):
        xs = xp[:, g * in_per_group:(g + 1) * in_per_group]
        ws = w[g * per_out:(g + 1) * per_out]
        for offset in np.ndindex(*kernel):
            sl = tuple(slice(offset[k] * dilation[k], offset[k] * dilation[k] + stride[k] * (out_len[k] - 1) + 1,
                             stride[k]) for k in range(nd))
            patch = xs[(slice(None), slice(None)) + sl]
            y[:, g * per_out:(g + 1) * per_out] += np.einsum("bc...,oc->bo...", patch, ws[(slice(None), slice(None)) + offset])
    return y + np.asarray(b).reshape((1, -1) + (1,) * nd)


def sum_pool2d(x, kernel, stride, padding):
    kernel, stride, padding = [np.broadcast_to(np.asarray(v), (2,)).astype(int) for v in (kernel, stride, padding)]
    xp = np.pad(x, [(0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])])
    oh = (xp.shape[2] - kernel[0]) // stride[0] + 1
    ow = (xp.shape[3] - kernel[1]) // stride[1] + 1
    y = np.zeros((x.shape[0], x.shape[1], oh, ow))
    for i, j in np.ndindex(kernel[0], kernel[1]):
        y += xp[:, :, i:i + stride[0] * (oh - 1) + 1:stride[0], j:j + stride[1] * (ow - 1) + 1:stride[1]]
    return y
