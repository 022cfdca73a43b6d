"""Seed corpora for the fuzz targets, from the golden files in ../shared/golden (skipped with a
message when absent: the fuzzers then start from nothing).

    python3 fuzz/make_corpus.py OUTDIR [SHARED_DIR]

OUTDIR/pt_container: every golden .pt file; OUTDIR/unpickler: their data.pkl records;
OUTDIR/arch: the golden architecture files; OUTDIR/nir: a few small graphs written by the reference
nir package (needs python3-h5py and ../shared/reference).
"""
import hashlib
import os
import shutil
import sys
import zipfile


def put(folder, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def nir_seeds(shared, out):
    path = os.path.join(shared, "reference", "nir-7232ada")
    try:
        import numpy as np
        sys.path.insert(0, path)
        import nir
    except ImportError as e:
        print("make_corpus: no NIR seeds (%s)" % e)
        return
    import tempfile
    graphs = [
        nir.NIRGraph.from_list(nir.Affine(np.eye(2, 3), np.zeros(2)),
                               nir.LIF(np.ones(2), np.ones(2), np.zeros(2), np.ones(2), np.ones(2))),
        nir.NIRGraph.from_list(nir.Linear(np.ones((3, 2))), nir.LI(np.ones(3), np.ones(3), np.zeros(3))),
        nir.NIRGraph.from_list(nir.Affine(np.ones((2, 2)), np.ones(2)),
                               nir.CubaLIF(np.ones(2), np.ones(2), np.ones(2), np.ones(2), np.zeros(2), np.ones(2))),
    ]
    with tempfile.TemporaryDirectory() as d:
        for i, g in enumerate(graphs):
            p = os.path.join(d, "g%d.nir" % i)
            nir.write(p, g)
            with open(p, "rb") as f:
                put(os.path.join(out, "nir"), f.read())


def main():
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "shared")
    golden = os.path.join(shared, "golden")
    if not os.path.isdir(golden):
        print("make_corpus: SKIP: no golden files in", golden)
        return
    for root, _, files in os.walk(golden):
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                data = f.read()
            if name.endswith(".json") and b"tt-arch/1" in data:
                put(os.path.join(out, "arch"), data)
            elif zipfile.is_zipfile(path):
                put(os.path.join(out, "pt_container"), data)
                with zipfile.ZipFile(path) as z:
                    for member in z.namelist():
                        if member.endswith("/data.pkl"):
                            put(os.path.join(out, "unpickler"), z.read(member))
    nir_seeds(shared, out)
    for target in ("pt_container", "unpickler", "arch", "nir"):
        folder = os.path.join(out, target)
        print("make_corpus: %s: %d seeds" % (target, len(os.listdir(folder)) if os.path.isdir(folder) else 0))


if __name__ == "__main__":
    main()
