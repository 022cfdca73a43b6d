"""Each NIR primitive, alone between an Input and an Output node, written with the reference nir
package and run by `tracetorch run --nir`, against its equation stepped in numpy (nir_common.py).
Neurons run under both discretisations, in float64 (the CLI runs a graph in its inputs' dtype),
with parameters away from NIR's defaults (v_leak, v_reset, r != 1)."""
import numpy as np

from nir_common import NeuronRef, affine, conv_nd, import_nir, run_graph, sum_pool2d

nir = import_nir()
rng = np.random.default_rng(7)
T, B = 40, 3
DT = 1e-3


def chain(node, in_shape, out_shape):
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array(in_shape)), "node": node,
                               "output": nir.Output(output_type=np.array(out_shape))},
                        edges=[("input", "node"), ("node", "output")], type_check=False)


def check(name, got, want, exact_bits=False):
    assert got.shape == want.shape, (name, got.shape, want.shape)
    err = np.abs(got - want).max() if want.size else 0.0
    tol = 0.0 if exact_bits else 1e-9 * max(1.0, np.abs(want).max())
    assert err <= tol, (name, err)
    print(f"{name}: max |diff| {err:.3g}")


def stateless(name, node, in_shape, out_shape, fn):
    x = rng.normal(size=(T, B, *in_shape))
    got = run_graph(nir, chain(node, in_shape, out_shape), x, DT)
    check(name, got, np.stack([fn(x[t]) for t in range(T)]))


def neurons(kind, params, n, scale=1.0):
    for exact in (False, True):
        node = getattr(nir, kind)(**params)
        x = rng.normal(size=(T, B, n)) * scale
        got = run_graph(nir, chain(node, [n], [n]), x, DT, "exact" if exact else "euler")
        ref = NeuronRef(kind, params, DT, exact)
        want = np.stack([ref.step(x[t]) for t in range(T)])
        if kind in ("IF", "LIF", "CubaLIF"):
            assert set(np.unique(got)) <= {0.0, 1.0}, kind
            assert 0 < want.mean() < 1, (kind, "the test input should make some neurons spike", want.mean())
        # Euler performs the same float64 operations in the same order: equal bits.
        check(f"{kind} {'exact' if exact else 'euler'}", got, want, exact_bits=not exact)


def main():
    n = 6
    w = rng.normal(size=(4, 5))
    b = rng.normal(size=4)
    stateless("Affine", nir.Affine(weight=w, bias=b), [5], [4], lambda x: affine(x, w, b))
    stateless("Linear", nir.Linear(weight=w), [5], [4], lambda x: affine(x, w))
    s = rng.normal(size=5)
    stateless("Scale", nir.Scale(scale=s), [5], [5], lambda x: x * s)
    th = rng.normal(size=5)
    stateless("Threshold", nir.Threshold(threshold=th), [5], [5], lambda x: (x > th).astype(np.float64))
    stateless("Flatten all", nir.Flatten(input_type={"input": np.array([2, 3, 2])}, start_dim=0, end_dim=-1),
              [2, 3, 2], [12], lambda x: x.reshape(x.shape[0], -1))
    stateless("Flatten inner", nir.Flatten(input_type={"input": np.array([2, 3, 2])}, start_dim=1, end_dim=2),
              [2, 3, 2], [2, 6], lambda x: x.reshape(x.shape[0], 2, 6))

    w1 = rng.normal(size=(3, 2, 3))
    b1 = rng.normal(size=3)
    stateless("Conv1d", nir.Conv1d(input_shape=9, weight=w1, stride=2, padding=1, dilation=1, groups=1, bias=b1),
              [2, 9], [3, 5], lambda x: conv_nd(x, w1, b1, 2, 1, 1, 1))
    w2 = rng.normal(size=(4, 1, 3, 3))
    b2 = rng.normal(size=4)
    stateless("Conv2d groups", nir.Conv2d(input_shape=(6, 5), weight=w2, stride=1, padding=(1, 2), dilation=(2, 1),
                                          groups=2, bias=b2),
              [2, 6, 5], [4, 4, 7], lambda x: conv_nd(x, w2, b2, 1, (1, 2), (2, 1), 2))
    w3 = rng.normal(size=(2, 2, 3, 3))
    stateless("Conv2d same", nir.Conv2d(input_shape=(5, 5), weight=w3, stride=1, padding="same", dilation=1, groups=1,
                                        bias=np.zeros(2)),
              [2, 5, 5], [2, 5, 5], lambda x: conv_nd(x, w3, np.zeros(2), 1, 1, 1, 1))
    stateless("SumPool2d", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 1]), padding=np.array([0, 1])),
              [3, 4, 4], [3, 2, 5], lambda x: sum_pool2d(x, 2, (2, 1), (0, 1)))
    stateless("AvgPool2d", nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([2, 2]), padding=np.array([1, 1])),
              [3, 5, 5], [3, 3, 3], lambda x: sum_pool2d(x, 3, 2, 1) / 9.0)

    # Delay: round(delay / dt) steps per neuron (0, 2 and 5 steps here).
    delay = np.array([0.0, 2e-3, 5.1e-3])
    x = rng.normal(size=(T, B, 3))
    got = run_graph(nir, chain(nir.Delay(delay=delay), [3], [3]), x, DT)
    want = np.zeros_like(x)
    for k, steps in enumerate([0, 2, 5]):
        want[steps:, :, k] = x[:T - steps, :, k]
    check("Delay", got, want, exact_bits=True)

    tau = rng.uniform(5e-3, 2e-2, n)
    r = rng.uniform(0.5, 2.0, n)
    leak = rng.uniform(-0.2, 0.2, n)
    thr = rng.uniform(0.5, 1.0, n)
    reset = rng.uniform(-0.3, 0.1, n)
    neurons("I", dict(r=r), n)
    neurons("IF", dict(r=r * 100, v_threshold=thr, v_reset=reset), n)
    neurons("LI", dict(tau=tau, r=r, v_leak=leak), n)
    neurons("LIF", dict(tau=tau, r=r, v_leak=leak, v_threshold=thr * 0.2, v_reset=reset), n, scale=3.0)
    cuba = dict(tau_syn=tau * 0.5, tau_mem=tau, r=r, v_leak=leak, w_in=rng.uniform(0.5, 3.0, n))
    neurons("CubaLI", cuba, n)
    neurons("CubaLIF", dict(cuba, v_threshold=thr * 0.1, v_reset=reset), n, scale=5.0)
    print("ok")


if __name__ == "__main__":
    main()
