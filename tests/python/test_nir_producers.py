"""Graphs written the way snnTorch and Norse write NIR (their exporters' documented parameter
conventions, node names and layouts), run by `tracetorch run --nir` over 100 steps against a
numpy reference of the same discretisation (forward Euler, nir_common.py), in float64.

snnTorch (snntorch/export_nir.py) writes with dt = 1e-4:
  Leaky     -> LIF(tau = dt / (1 - beta), r = tau / dt, v_leak = 0, v_threshold)   (v_reset absent: 0)
  Synaptic  -> CubaLIF(tau_syn = dt / (1 - alpha), tau_mem = dt / (1 - beta), r = tau_mem / dt,
                       w_in = tau_syn / dt, v_leak = 0, v_threshold)
  RSynaptic -> a nested NIRGraph {input, lif: CubaLIF, w_rec: Linear, output} with the edge
               lif -> w_rec -> lif, its scalar alpha / beta / threshold broadcast to arrays.
With these parameters, Euler steps are exactly snnTorch's recurrences (syn = alpha syn + x,
mem = beta mem + syn), which the test checks too.
Norse (norse/torch/utils/export_nir.py) writes time constants in seconds, r = w_in = 1, and reads
with dt = 1e-3: LIFCell -> CubaLIF(tau_mem = 1 / tau_mem_inv, tau_syn = 1 / tau_syn_inv, v_leak,
v_threshold, v_reset), LIFBoxCell -> LIF, LIBoxCell -> LI, IAFCell -> IF(r = 1), Conv2d -> Conv2d,
Linear -> Affine; pooling as SumPool2d."""
import numpy as np

from nir_common import NeuronRef, affine, conv_nd, import_nir, run_graph, sum_pool2d

nir = import_nir()
rng = np.random.default_rng(11)
T = 100


def check_spikes_and_values(name, got, want, refs):
    assert got.shape == want.shape, (name, got.shape, want.shape)
    margin = min(r.margin for r in refs)
    assert margin > 1e-9, (name, "a membrane came within", margin, "of its threshold: pick other inputs")
    err = np.abs(got - want).max()
    assert err < 1e-9, (name, err)
    print(f"{name}: {T} steps, max |diff| {err:.3g}, closest approach to a threshold {margin:.3g}")


def snntorch_net():
    dt = 1e-4
    n_in, n1, n2, n3 = 6, 8, 5, 4
    beta1 = rng.uniform(0.8, 0.95, n1)
    alpha2, beta2 = rng.uniform(0.5, 0.8, n2), rng.uniform(0.8, 0.95, n2)
    alpha3, beta3 = np.full(n3, 0.7), np.full(n3, 0.9)  # RSynaptic(alpha=0.7, beta=0.9): np.ones(n) * alpha
    w0, b0 = rng.normal(size=(n1, n_in)), rng.normal(size=n1) * 0.1
    w2, b2 = rng.normal(size=(n2, n1)), rng.normal(size=n2) * 0.1
    w4, b4 = rng.normal(size=(n3, n2)), rng.normal(size=n3) * 0.1
    v_rec = rng.normal(size=(n3, n3)) * 0.5

    def leaky(beta, thr):
        tau = dt / (1 - beta)
        return nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros_like(beta), v_threshold=thr)

    def synaptic(alpha, beta, thr):
        tau_syn, tau_mem = dt / (1 - np.asarray(alpha)), dt / (1 - np.asarray(beta))
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros_like(tau_mem),
                           v_threshold=np.asarray(thr), w_in=tau_syn / dt)

    rsyn = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([n3])),
                               "lif": synaptic(alpha3, beta3, np.ones(n3)),
                               "w_rec": nir.Linear(weight=v_rec),
                               "output": nir.Output(output_type=np.array([n3]))},
                        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                        type_check=False)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([n_in])),
                                "0": nir.Affine(weight=w0, bias=b0),
                                "1": leaky(beta1, np.full(n1, 1.0)),
                                "2": nir.Affine(weight=w2, bias=b2),
                                "3": synaptic(alpha2, beta2, np.full(n2, 0.8)),
                                "4": nir.Affine(weight=w4, bias=b4),
                                "5": rsyn,
                                "output": nir.Output(output_type=np.array([n3]))},
                         edges=[("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "4"), ("4", "5"),
                                ("5", "output")],
                         type_check=False)
    x = rng.normal(size=(T, 2, n_in)) * 2.0
    got = run_graph(nir, graph, x, dt)

    p = {k: graph.nodes[k].__dict__ for k in ("1", "3")}
    fields = ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")
    lif1 = NeuronRef("LIF", {k: v for k, v in p["1"].items() if k in fields}, dt)
    cuba3 = NeuronRef("CubaLIF", {k: v for k, v in p["3"].items() if k in fields}, dt)
    cuba5 = NeuronRef("CubaLIF", {k: v for k, v in rsyn.nodes["lif"].__dict__.items() if k in fields}, dt)
    # snnTorch's own form of the same dynamics: syn = alpha syn + x, mem = beta mem + syn.
    mem1 = np.zeros((2, n1))
    syn3, mem3 = np.zeros((2, n2)), np.zeros((2, n2))
    z5 = np.zeros((2, n3))
    outs, outs_beta_form = [], []
    for t in range(T):
        h = affine(x[t], w0, b0)
        s1 = lif1.step(h)
        mem1 = beta1 * mem1 + h
        s1_beta = (mem1 > 1.0).astype(float)
        mem1 = np.where(s1_beta > 0, 0.0, mem1)
        assert np.array_equal(s1, s1_beta), ("snnTorch convention", t)
        h = affine(s1, w2, b2)
        s3 = cuba3.step(h)
        syn3 = alpha2 * syn3 + h
        mem3 = beta2 * mem3 + syn3
        s3_beta = (mem3 > 0.8).astype(float)
        mem3 = np.where(s3_beta > 0, 0.0, mem3)
        assert np.array_equal(s3, s3_beta), ("snnTorch convention", t)
        h = affine(s3, w4, b4)
        z5 = cuba5.step(h + z5 @ v_rec.T)  # the recurrent edge carries the previous step's spikes
        outs.append(z5)
    want = np.stack(outs)
    assert 0 < want.mean() < 1, "the test input should make the recurrent layer spike"
    check_spikes_and_values("snnTorch-style Leaky/Synaptic/RSynaptic", got, want, [lif1, cuba3, cuba5])


def norse_net():
    dt = 1e-3
    tau_mem, tau_syn = 1.0 / 100.0, 1.0 / 200.0  # Norse's LIFParameters defaults, inverted
    conv_w = rng.normal(size=(4, 1, 3, 3))
    conv_b = rng.normal(size=4) * 0.1
    lin1_w, lin1_b = rng.normal(size=(10, 64)) * 0.5, rng.normal(size=10) * 0.1
    lin2_w, lin2_b = rng.normal(size=(3, 10)), np.zeros(3)

    def full(v, n):
        return np.full(n, v, dtype=np.float64)

    lif_box = nir.LIF(tau=full(tau_mem, (4, 8, 8)), r=full(1, (4, 8, 8)), v_leak=full(0, (4, 8, 8)),
                      v_threshold=full(0.5, (4, 8, 8)), v_reset=full(0, (4, 8, 8)))
    lif = nir.CubaLIF(tau_mem=full(tau_mem, 10), tau_syn=full(tau_syn, 10), r=full(1, 10), v_leak=full(0, 10),
                      v_threshold=full(1.0, 10), v_reset=full(-0.1, 10), w_in=full(1, 10))
    li = nir.LI(tau=full(tau_mem, 3), r=full(1, 3), v_leak=full(0.05, 3))
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1, 8, 8])),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=conv_w, stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1,
                           bias=conv_b),
        "lifbox": lif_box,
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flatten": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0, end_dim=-1),
        "linear": nir.Affine(weight=lin1_w, bias=lin1_b),
        "lif": lif,
        "linear_1": nir.Affine(weight=lin2_w, bias=lin2_b),
        "li": li,
        "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "conv"), ("conv", "lifbox"), ("lifbox", "pool"), ("pool", "flatten"), ("flatten", "linear"),
               ("linear", "lif"), ("lif", "linear_1"), ("linear_1", "li"), ("li", "output")],
        type_check=False)
    x = (rng.uniform(size=(T, 2, 1, 8, 8)) < 0.3).astype(np.float64) * 4.0
    got = run_graph(nir, graph, x, dt)

    def params(node, keys):
        return {k: getattr(node, k) for k in keys}

    r_box = NeuronRef("LIF", params(lif_box, ("tau", "r", "v_leak", "v_threshold", "v_reset")), dt)
    r_lif = NeuronRef("CubaLIF", params(lif, ("tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in")), dt)
    r_li = NeuronRef("LI", params(li, ("tau", "r", "v_leak")), dt)
    outs = []
    for t in range(T):
        h = conv_nd(x[t], conv_w, conv_b, 1, 1, 1, 1)
        z = r_box.step(h)
        h = sum_pool2d(z, 2, 2, 0).reshape(2, -1)
        z = r_lif.step(affine(h, lin1_w, lin1_b))
        outs.append(r_li.step(affine(z, lin2_w, lin2_b)))
    want = np.stack(outs)
    assert np.abs(want).max() > 0.1, "the test input should reach the readout"
    check_spikes_and_values("Norse-style Conv2d/LIFBox/SumPool/LIF/LI", got, want, [r_box, r_lif])

    # IAFCell -> IF(r = 1): v += dt * x, reset to v_reset above v_threshold.
    iaf = nir.IF(r=full(1, 5), v_threshold=full(0.02, 5), v_reset=full(0, 5))
    g2 = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([5])), "iaf": iaf,
                             "output": nir.Output(output_type=np.array([5]))},
                      edges=[("input", "iaf"), ("iaf", "output")], type_check=False)
    x2 = rng.normal(size=(T, 3, 5)) * 2.0 + 0.5
    got2 = run_graph(nir, g2, x2, dt)
    r_iaf = NeuronRef("IF", params(iaf, ("r", "v_threshold", "v_reset")), dt)
    want2 = np.stack([r_iaf.step(x2[t]) for t in range(T)])
    assert 0 < want2.mean() < 1
    check_spikes_and_values("Norse-style IAF", got2, want2, [r_iaf])


def main():
    snntorch_net()
    norse_net()
    print("ok")


if __name__ == "__main__":
    main()
