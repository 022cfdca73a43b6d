"""NIR files through `tracetorch run --nir`: malformed files (made here with h5py) are one-line
errors naming the file and the node, never crashes; states of a NIR graph save and load through
--save-states / --states so that a run can be split in two; inputs without a batch axis work."""
import os
import subprocess
import tempfile

import h5py
import numpy as np
import torch

from nir_common import CLI, cli_error, import_nir, run_cli

nir = import_nir()
rng = np.random.default_rng(3)


def sample_graph():
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([3])),
        "affine": nir.Affine(weight=rng.normal(size=(4, 3)) * 2, bias=np.zeros(4)),
        "lif": nir.LIF(tau=np.full(4, 5e-3), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.full(4, 0.2)),
        "li": nir.LI(tau=np.full(4, 2e-3), r=np.ones(4), v_leak=np.zeros(4)),
        "output": nir.Output(output_type=np.array([4]))},
        edges=[("input", "affine"), ("affine", "lif"), ("lif", "li"), ("li", "output")])


def expect_error(d, name, mutate, *needles):
    path = os.path.join(d, name + ".nir")
    nir.write(path, sample_graph())
    if mutate is not None:
        with h5py.File(path, "r+") as f:
            mutate(f)
    rc, err = cli_error(path, np.zeros((2, 1, 3)))
    assert rc == 1, (name, rc, err)
    assert err.startswith("tracetorch: error: ") and err.count("\n") == 1, (name, err)
    assert path in err, (name, err)
    for needle in needles:
        assert needle in err, (name, needle, err)
    print(f"{name}: {err.strip()}")


def set_text(group, key, text):
    del group[key]
    group.create_dataset(key, data=text, dtype=h5py.string_dtype())


def main():
    with tempfile.TemporaryDirectory() as d:
        nodes = "node/nodes/"
        junk = os.path.join(d, "junk.nir")
        with open(junk, "wb") as f:
            f.write(rng.bytes(2000))
        rc, err = cli_error(junk, np.zeros((2, 3)))
        assert rc == 1 and "junk.nir: not a NIR file (no HDF5 signature)" in err, err

        graph = sample_graph()
        good = os.path.join(d, "good.nir")
        nir.write(good, graph)
        data = open(good, "rb").read()
        cut = os.path.join(d, "cut.nir")
        with open(cut, "wb") as f:
            f.write(data[: len(data) // 2])
        rc, err = cli_error(cut, np.zeros((2, 3)))
        # One line: libhdf5's own error printing stays off.
        assert rc == 1 and "cut.nir: not a readable HDF5 file" in err and err.count("\n") == 1, err

        expect_error(d, "no_node", lambda f: f.__delitem__("node"), "no 'node' group: not a NIR file")
        expect_error(d, "unknown_type", lambda f: set_text(f[nodes + "lif"], "type", "Spiky"),
                     "node 'lif' (Spiky): unknown node type 'Spiky'")
        expect_error(d, "no_type", lambda f: f[nodes + "lif"].__delitem__("type"), "node/nodes/lif: node without a 'type'")
        expect_error(d, "missing_tau", lambda f: f[nodes + "lif"].__delitem__("tau"), "node 'lif' (LIF): missing field 'tau'")
        expect_error(d, "text_tau", lambda f: set_text(f[nodes + "lif"], "tau", "fast"),
                     "node 'lif' (LIF): field 'tau' must be numbers")

        def bad_edge(f):
            del f["node/edges"]
            f["node"].create_dataset("edges", data=np.array([["input", "affine"], ["lif", "ghost"]], dtype=object),
                                     dtype=h5py.string_dtype())
        expect_error(d, "bad_edge", bad_edge, "edge ('lif', 'ghost'): no node 'ghost'")

        def wrong_weight(f):
            del f[nodes + "affine/weight"]
            f[nodes + "affine"].create_dataset("weight", data=np.ones((4, 5)))
        expect_error(d, "wrong_weight", wrong_weight, "NIR node 'affine' (Affine): weight [4, 5] does not fit an input of shape [3]")

        def compound(f):
            f[nodes + "lif"].create_dataset("odd", data=np.zeros(2, dtype=[("a", "i4"), ("b", "f4")]))
        expect_error(d, "compound", compound, "node/nodes/lif/odd: unsupported datatype")

        def external(f):
            f[nodes + "lif"]["extra"] = h5py.ExternalLink("elsewhere.h5", "/data")
        expect_error(d, "external_link", external, "soft or external links are not supported")

        def huge(f):
            f[nodes + "lif"].create_dataset("big", shape=(1 << 20, 1 << 10), dtype="f4")  # 2^30 elements, never written
        expect_error(d, "huge", huge, "more than 268435456 elements")

        # A run split in two with --save-states / --states equals the run in one go.
        x = rng.normal(size=(40, 2, 3))
        full = run_cli(good, x, 1e-3)
        states = os.path.join(d, "states.pt")
        first = run_cli(good, x[:25], 1e-3, extra=("--save-states", states))
        saved = torch.load(states)
        assert sorted(saved) == ["li.v", "lif.v"], sorted(saved)
        second = run_cli(good, x[25:], 1e-3, extra=("--states", states))
        assert np.array_equal(np.concatenate([first, second]), full)
        assert 0 < (full != 0).mean()

        # Fixed-length strings (as other HDF5 writers store them) and uncompressed data read the same.
        fixed = os.path.join(d, "fixed.nir")
        nir.write(fixed, graph, compression=None)
        with h5py.File(fixed, "r+") as f:
            for name in f["node/nodes"]:
                text = f["node/nodes"][name]["type"][()]
                del f["node/nodes"][name]["type"]
                f["node/nodes"][name].create_dataset("type", data=np.bytes_(text))
            assert f["node/nodes/lif/type"].dtype.kind == "S"
        assert np.array_equal(run_cli(fixed, x, 1e-3), full)

        # No batch axis: [T, 3] in, [T, 4] out, the same numbers.
        single = run_cli(good, x[:, 0], 1e-3)
        assert single.shape == (40, 4) and np.array_equal(single, full[:, 0]), single.shape

        # --dt is required with --nir, and --nir excludes --arch.
        r = subprocess.run([CLI, "run", "--nir", good, "--inputs", states], capture_output=True, text=True)
        assert r.returncode == 1 and "--nir needs --dt" in r.stderr, r.stderr
        r = subprocess.run([CLI, "run", "--nir", good, "--arch", "a.json", "--dt", "1e-3", "--inputs", states],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "excludes" in (r.stderr + r.stdout), r.stderr
    print("ok")


if __name__ == "__main__":
    main()
