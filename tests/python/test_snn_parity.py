"""Bit-exact parity of the 32 SNN layers between the C++ `tracetorch run` program and an
independent Python re-implementation of the spec's generic step (spec 5.3).

Python writes an architecture (spec 9.1), a state_dict (an OrderedDict pickle, raw_* keys in
PyTorch's order: learnable parameters first, then buffers) and time-major inputs; the C++ program
runs the model one step at a time and writes the stacked outputs and the final states; both are
compared with torch.equal against the reference below (same ops, same order, same association,
same LibTorch build => same bits).

To keep the number of processes small, one model holds many layers in series: every layer of a
configuration group (all 32 classes x several configurations) follows a Linear whose gain was
chosen so that the layer sees inputs of a useful size. States are checked per layer, so a
mismatch names the first layer (class, configuration) and state that differ.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

import torch
import torch.nn.functional as F

BUILD = os.environ.get("TT_BINARY_DIR", "build")
CLI = os.path.join(BUILD, "tools", "tracetorch")

NAMES = [
    "LI", "DLI", "SLI", "DSLI", "LIEMA", "DLIEMA", "SLIEMA", "DSLIEMA",
    "LIB", "DLIB", "SLIB", "RLIB", "DSLIB", "DRLIB", "SRLIB", "DSRLIB",
    "LIT", "DLIT", "SLIT", "RLIT", "DSLIT", "DRLIT", "SRLIT", "DSRLIT",
    "LITS", "DLITS", "SLITS", "RLITS", "DSLITS", "DRLITS", "SRLITS", "DSRLITS",
]
FIRING = [n for n in NAMES if not n.endswith("LI") and not n.endswith("LIEMA")]


# ---------------------------------------------------------------------------------------------
# the layer zoo by rule (spec 5.2 / 5.4)

def features(name):
    rest = name
    dual = rest.startswith("D")
    rest = rest[1:] if dual else rest
    syn = rest.startswith("S")
    rest = rest[1:] if syn else rest
    rec = rest.startswith("R")
    rest = rest[1:] if rec else rest
    ema = rest.endswith("EMA")
    family = rest[:-3] if ema else rest
    assert family in ("LI", "LIB", "LIT", "LITS"), name
    return dual, syn, rec, ema, family


def parameters(name):
    """[(name, kind)] in registration order."""
    dual, syn, rec, _, family = features(name)
    group = (lambda b: ["pos_" + b, "neg_" + b]) if dual else (lambda b: [b])
    out = []
    if syn:
        out += [(p, "decay") for p in group("alpha")]
    out += [(p, "decay") for p in group("beta")]
    if rec:
        out += [(p, "decay") for p in group("gamma")]
    if family == "LIB":
        out.append(("threshold", "threshold"))
    if family in ("LIT", "LITS"):
        out += [("pos_threshold", "threshold"), ("neg_threshold", "threshold")]
    if family != "LI":
        out.append(("bias", "bias"))
    if family == "LITS":
        out += [("pos_scale", "scale"), ("neg_scale", "scale")]
    if rec:
        out += [(p, "rec_weight") for p in group("rec_weight")]
    return out


def state_names(name):
    dual, syn, rec, _, _ = features(name)
    group = (lambda b: ["pos_" + b, "neg_" + b]) if dual else (lambda b: [b])
    out = []
    if syn:
        out += group("syn")
    out += group("mem")
    if rec:
        out += group("rec") + ["prev_output"]
    return out


ACTIVATION = {
    "decay": torch.sigmoid,
    "threshold": F.softplus,
    "bias": torch.asinh,
    "scale": lambda r: r,
    "rec_weight": lambda r: r,
}
INIT = {
    "decay": torch.logit,
    "threshold": lambda v: torch.log(torch.expm1(v)),
    "bias": torch.sinh,
    "scale": lambda v: v,
    "rec_weight": lambda v: v,
}
# activated values are drawn from these ranges (as the golden generator does)
RANGE = {"decay": (0.35, 0.97), "threshold": (0.4, 1.6), "bias": (-0.3, 0.3), "scale": (0.5, 1.5),
         "rec_weight": (-0.8, 0.8)}


# ---------------------------------------------------------------------------------------------
# the reference step (spec 5.3), written from the spec

def P(v):
    return torch.where(v >= 0, v, 0.0)


def N(v):
    return torch.where(v <= 0, v, 0.0)


def make_fn(text):
    if text == "identity":
        return lambda v: v
    if text == "sigmoid4x":
        return lambda v: torch.sigmoid(v * 4.0)
    if text == "probabilistic_ste()":
        return lambda v: v * torch.bernoulli(v)
    if text.startswith("round_ste("):
        step = float(text[len("round_ste("):-1])
        return lambda v: torch.round(v / step) * step
    if text.startswith("stochastic_round_ste("):
        step = float(text[len("stochastic_round_ste("):-1])

        def q(v):
            s = v / step
            f = torch.floor(s)
            frac = s - f
            u = torch.rand_like(s)
            return (f + (u < frac).float()) * step
        return q
    raise ValueError(text)


class RefNeuron:
    def __init__(self, cfg, raws):
        self.name = cfg["name"]
        self.n = cfg["n"]
        self.dim = cfg["dim"]
        self.dual, self.syn, self.rec, self.ema, self.family = features(self.name)
        self.kinds = dict(parameters(self.name))
        self.raws = raws
        self.f = make_fn(cfg.get("spike_fn", "sigmoid4x"))
        self.q = make_fn(cfg.get("quant_fn", "identity"))
        self.states = {s: None for s in state_names(self.name)}

    def p(self, name):  # the activated parameter, recomputed on every access as in Python
        return ACTIVATION[self.kinds[name]](self.raws[name])

    def forward(self, x):
        for s, v in self.states.items():
            if v is None:
                shape = list(x.shape)
                shape[self.dim] = self.n
                self.states[s] = torch.zeros(shape, dtype=x.dtype, device=x.device)
        dim, st, p = self.dim, self.states, self.p
        W = lambda t: t.movedim(dim, -1)  # noqa: E731
        C = lambda t: t.movedim(-1, dim)  # noqa: E731
        xw = W(x)
        # (b) synaptic stage
        d = xw
        if self.syn:
            if self.dual:
                pos = W(st["pos_syn"]) * p("pos_alpha") + P(xw) * (1 - p("pos_alpha"))
                neg = W(st["neg_syn"]) * p("neg_alpha") + N(xw) * (1 - p("neg_alpha"))
                st["pos_syn"], st["neg_syn"] = C(pos), C(neg)
                d = pos + neg
            else:
                syn = W(st["syn"]) * p("alpha") + xw * (1 - p("alpha"))
                st["syn"] = C(syn)
                d = syn
        # (c) recurrent stage
        r = None
        if self.rec:
            prev = W(st["prev_output"])
            if self.dual:
                pos = W(st["pos_rec"]) * p("pos_gamma") + P(prev) * (1 - p("pos_gamma"))
                neg = W(st["neg_rec"]) * p("neg_gamma") + N(prev) * (1 - p("neg_gamma"))
                st["pos_rec"], st["neg_rec"] = C(pos), C(neg)
                r = pos + neg
            else:
                r = W(st["rec"]) * p("gamma") + prev * (1 - p("gamma"))
                st["rec"] = C(r)
        # (d) membrane stage
        if self.dual:
            if self.ema:
                pm = W(st["pos_mem"]) * p("pos_beta") + P(d) * (1 - p("pos_beta"))
                nm = W(st["neg_mem"]) * p("neg_beta") + N(d) * (1 - p("neg_beta"))
            else:
                if self.rec:
                    up = P(r) * p("pos_rec_weight") + P(d)
                    un = N(r) * p("neg_rec_weight") + N(d)
                else:
                    up, un = P(d), N(d)
                pm = W(st["pos_mem"]) * p("pos_beta") + up
                nm = W(st["neg_mem"]) * p("neg_beta") + un
            m = pm + nm
        else:
            if self.ema:
                pm = W(st["mem"]) * p("beta") + d * (1 - p("beta"))
            else:
                u = r * p("rec_weight") + d if self.rec else d
                pm = W(st["mem"]) * p("beta") + u
            nm = None
            m = pm
        # (e) output stage
        if self.family == "LI":
            if self.dual:
                st["pos_mem"], st["neg_mem"] = C(pm), C(nm)
                return st["pos_mem"] + st["neg_mem"]
            st["mem"] = C(pm)
            return st["mem"]

        def reset(pm, nm, s, th):
            if self.dual:
                return pm - s * th * 0.5, nm - s * th * 0.5
            return pm - s * th, None

        f, q = self.f, self.q
        if self.family == "LIB":
            th = p("threshold")
            s = q(f(m - th + p("bias")))
            pm, nm = reset(pm, nm, s, th)
            out = s
        else:
            sp = q(f(m - p("pos_threshold") + p("bias")))
            sn = -q(f(-p("neg_threshold") - m - p("bias")))
            pm, nm = reset(pm, nm, sp, p("pos_threshold"))
            pm, nm = reset(pm, nm, sn, p("neg_threshold"))
            if self.family == "LITS":
                sp = sp * p("pos_scale")
                sn = sn * p("neg_scale")
            out = sp + sn
        if self.dual:
            st["pos_mem"], st["neg_mem"] = C(pm), C(nm)
        else:
            st["mem"] = C(pm)
        out = C(out)
        if self.rec:
            st["prev_output"] = out
        return out


# ---------------------------------------------------------------------------------------------
# configurations

def layer_config(name, n, dim, style, gen, spike_fn=None, quant_fn=None):
    """One layer: its JSON node, its raw values (by name) and the learnable flags.

    style: "rank1"  values only in the weights, default ranks / flags;
           "rank0"  every `<p>_rank` = 0;
           "mixed"  per parameter a random rank, learn flag and JSON value (a number, or a list =
                    a 1-D tensor; sometimes a list together with `<p>_rank: 0`, which the list
                    overrides)."""
    node = OrderedDict([("type", "snn." + name), ("num_neurons", n)])
    raws, learn, values, ranks, flags = OrderedDict(), OrderedDict(), OrderedDict(), OrderedDict(), OrderedDict()
    for p, kind in parameters(name):
        lo, hi = RANGE[kind]
        choice = torch.randint(0, 4, (3,), generator=gen).tolist()
        if style == "rank0":
            rank, as_list = 0, False
        elif style == "rank1":
            rank, as_list = 1, False
        else:
            as_list = choice[0] == 0
            rank = 1 if as_list else choice[1] % 2
        shape = [n] if rank == 1 else []
        value = (torch.rand(shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo).float()
        raws[p] = INIT[kind](value)
        learn[p] = True
        if style == "mixed":
            if as_list:
                values[p] = value.tolist()
                if choice[1] % 2 == 0:
                    ranks[p] = 0  # overridden by the list (spec 9.1)
            else:
                values[p] = value.item() if rank == 0 else value[0].item()
                if rank == 0:
                    ranks[p] = 0
                elif choice[2] == 0:
                    ranks[p] = 1
                if rank == 1:  # a number with rank 1 fills the vector: keep the weights consistent
                    raws[p] = INIT[kind](torch.full([n], value[0].item()))
            learn[p] = choice[2] % 2 == 1
            if not learn[p] or choice[2] == 1:
                flags[p] = learn[p]
        elif style == "rank0":
            ranks[p] = 0
    for p, v in values.items():
        node[p] = v
    if dim != -1 or style == "mixed":
        node["dim"] = dim
    for p, r in ranks.items():
        node[p + "_rank"] = r
    for p, l in flags.items():
        node["learn_" + p] = l
    if spike_fn is not None:
        node["spike_fn"] = spike_fn
    if quant_fn is not None:
        node["quant_fn"] = quant_fn
    return {"name": name, "n": n, "dim": dim, "node": node, "raws": raws, "learn": learn, "style": style,
            "spike_fn": spike_fn or "sigmoid4x", "quant_fn": quant_fn or "identity"}


def group_configs(group, n, gen):
    """(label, layer config) pairs of one model."""
    out = []

    def add(label, names, **kw):
        for name in names:
            out.append((label, layer_config(name, n, **kw, gen=gen)))

    if group == "last_axis":
        add("rank1", NAMES, dim=-1, style="rank1")
        add("rank0", NAMES, dim=-1, style="rank0")
        add("mixed", NAMES, dim=-1, style="mixed")
        add("round_ste(0.5)", FIRING, dim=-1, style="rank1", quant_fn="round_ste(0.5)")
        add("spike_identity", FIRING, dim=-1, style="mixed", spike_fn="identity")
        add("identity+round", FIRING, dim=-1, style="rank0", spike_fn="identity", quant_fn="round_ste(0.5)")
    elif group == "dim1":
        add("dim1_rank1", NAMES, dim=1, style="rank1")
        add("dim1_mixed", NAMES, dim=1, style="mixed")
        add("dim-2_rank0_round", FIRING, dim=-2, style="rank0", quant_fn="round_ste(0.5)")
    elif group == "float64":
        # no Linear (its weights would be float32); LI and firing layers alternate so that every
        # membrane output is followed by a bounded spike output
        li = [n_ for n_ in NAMES if n_ not in FIRING]
        order = []
        for i, name in enumerate(FIRING):
            order.append(name)
            if i % 3 == 2:
                order.append(li[i // 3])
        add("float64_mixed", order, dim=-1, style="mixed")
    elif group == "stochastic":
        add("stochastic_round_ste(0.5)", FIRING, dim=-1, style="mixed", quant_fn="stochastic_round_ste(0.5)")
        add("probabilistic_ste()", FIRING, dim=-1, style="rank1", quant_fn="probabilistic_ste()")
    else:
        raise ValueError(group)
    return out


GROUPS = {
    # group: (input shape per step, dtype, Linear between layers, seed for the run or None)
    "last_axis": ([3, 5], torch.float32, True, None),
    "dim1": ([2, 4, 3], torch.float32, True, None),
    "float64": ([3, 4], torch.float64, False, None),
    "stochastic": ([3, 5], torch.float32, True, 1234),
}
T = 12


class Model:
    """The reference model: [Linear] -> neuron -> [Linear] -> neuron ..."""

    def __init__(self, items, linears):
        self.items = items  # ("linear", (W, b)) or ("neuron", cfg)
        self.linears = linears

    def run(self, x):
        neurons = {i: RefNeuron(cfg, cfg["raws"]) for i, (kind, cfg) in enumerate(self.items) if kind == "neuron"}
        outs = []
        for t in range(x.shape[0]):
            h = x[t]
            for i, (kind, v) in enumerate(self.items):
                h = F.linear(h, v[0], v[1]) if kind == "linear" else neurons[i].forward(h)
            outs.append(h)
        return torch.stack(outs), neurons


def build_group(group, seed):
    step_shape, dtype, with_linear, _ = GROUPS[group]
    gen = torch.Generator().manual_seed(seed)
    n = step_shape[1]
    configs = group_configs(group, n, gen)
    x = torch.randn([T] + step_shape, generator=gen, dtype=torch.float64).to(dtype) * 1.5
    feat = step_shape[-1]  # Linear acts on the last axis
    # Choose every Linear's gain from the (layer-major) activity of what precedes it, so that each
    # neuron sees inputs of standard deviation about 1.5.
    items, h = [], x
    for label, cfg in configs:
        if with_linear:
            w = torch.randn(feat, feat, generator=gen) / math.sqrt(feat)
            b = torch.randn(feat, generator=gen) * 0.3
            y = F.linear(h, w, b)
            std = y.std().item()
            scale = 1.5 / std if std > 1e-3 and math.isfinite(std) else 1.0
            w, b = w * scale, b * scale
            items.append(("linear", (w, b)))
            h = F.linear(h, w, b)
        items.append(("neuron", cfg))
        cfg["label"] = label
        ref = RefNeuron(cfg, cfg["raws"])
        h = torch.stack([ref.forward(h[t]) for t in range(T)])
    arch = {"format": "tt-arch/1", "model": {"type": "Sequential", "children": []}}
    sd = OrderedDict()
    for i, (kind, v) in enumerate(items):
        if kind == "linear":
            arch["model"]["children"].append({"type": "Linear", "in_features": feat, "out_features": feat, "bias": True})
            sd["%d.weight" % i], sd["%d.bias" % i] = v
        else:
            arch["model"]["children"].append(v["node"])
            # PyTorch's order: the learnable raw_* (parameters) first, then the buffers
            for learnable in (True, False):
                for p, _ in parameters(v["name"]):
                    if v["learn"][p] == learnable:
                        sd["%d.raw_%s" % (i, p)] = v["raws"][p]
    return Model(items, with_linear), arch, sd, x


# ---------------------------------------------------------------------------------------------
# running and comparing

class Tally:
    def __init__(self):
        self.passed, self.failed, self.messages, self.first_mismatches = 0, 0, [], []

    def check(self, ok, message):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.messages.append(message)


def max_diff(a, b):
    if a.shape != b.shape:
        return "shape %s vs %s" % (tuple(a.shape), tuple(b.shape))
    if a.dtype != b.dtype:
        return "dtype %s vs %s" % (a.dtype, b.dtype)
    return "max abs diff %.3g" % (a.double() - b.double()).abs().max().item()


def run_cli(d, tag, extra, seed):
    out, states = os.path.join(d, tag + "_out.pt"), os.path.join(d, tag + "_states.pt")
    cmd = [CLI, "run", "--threads", "1", "--arch", os.path.join(d, "arch.json"), "--weights",
           os.path.join(d, "weights.pt"), "--inputs", os.path.join(d, "inputs.pt"), "--outputs", out,
           "--save-states", states] + extra
    if seed is not None:
        cmd += ["--seed", str(seed)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return torch.load(out), torch.load(states)


def check_group(group, seed, tally):
    _, dtype, _, run_seed = GROUPS[group]
    model, arch, sd, x = build_group(group, seed)
    if run_seed is not None:
        torch.manual_seed(run_seed)
    want, neurons = model.run(x)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "arch.json"), "w") as f:
            json.dump(arch, f)
        torch.save(sd, os.path.join(d, "weights.pt"))  # a real OrderedDict pickle
        torch.save(x, os.path.join(d, "inputs.pt"))
        for tag, extra in (("eager", []), ("compiled", ["--compile", "--save-weights", os.path.join(d, "cw.pt")])):
            out, states = run_cli(d, tag, extra, run_seed)
            where = "%s/%s" % (group, tag)
            # per layer: every state, in the order the first mismatch is found
            first_bad = None
            for i, ref in neurons.items():
                cfg = model.items[i][1]
                ok = True
                for s in state_names(cfg["name"]):
                    key = "%d.%s" % (i, s)
                    got = states.get(key)
                    if got is None or not torch.equal(got, ref.states[s]) or got.dtype != ref.states[s].dtype:
                        ok = False
                        if first_bad is None:
                            first_bad = "%s: layer %d %s [%s] state %s: %s" % (
                                where, i, cfg["name"], cfg["label"], s,
                                "missing" if got is None else max_diff(got, ref.states[s]))
                tally.check(ok, "%s: layer %d %s [%s] states differ" % (where, i, cfg["name"], cfg["label"]))
            if first_bad:
                tally.first_mismatches.append("first mismatch: " + first_bad)
            expected_keys = sorted("%d.%s" % (i, s) for i, ref in neurons.items() for s in ref.states)
            tally.check(sorted(states) == expected_keys, "%s: state keys %s" % (where, sorted(set(states) ^ set(expected_keys))))
            tally.check(out.dtype == dtype and torch.equal(out, want), "%s: outputs: %s" % (where, max_diff(out, want)))
            if tag == "compiled":
                cw = torch.load(os.path.join(d, "cw.pt"))
                want_keys, ok = [], True
                for i, (kind, v) in enumerate(model.items):
                    if kind == "linear":
                        want_keys += ["%d.weight" % i, "%d.bias" % i]
                        continue
                    for p, k in parameters(v["name"]):
                        key = "%d.%s" % (i, p)
                        want_keys.append(key)
                        if key in cw and not torch.equal(cw[key], ACTIVATION[k](v["raws"][p])):
                            ok = False
                            tally.messages.append("%s: compiled value %s (%s) %s" % (
                                where, key, v["name"], max_diff(cw[key], ACTIVATION[k](v["raws"][p]))))
                tally.check(list(cw) == want_keys, "%s: compiled state_dict keys/order differ: %s" % (
                    where, [k for k in list(cw) if k not in want_keys] + [k for k in want_keys if k not in cw]))
                tally.check(ok, "%s: compiled values differ from the activations" % where)
    return len(neurons)


def main():
    start = time.time()
    torch.set_num_threads(1)
    tally = Tally()
    layers = 0
    for seed, group in enumerate(GROUPS):
        try:
            layers += check_group(group, 100 + seed, tally)
        except Exception as e:  # a CLI failure: report it and go on with the next group
            tally.check(False, "%s: %s: %s" % (group, type(e).__name__, e))
    for m in tally.first_mismatches + tally.messages[:40]:
        print(m)
    if len(tally.messages) > 40:
        print("... and %d more" % (len(tally.messages) - 40))
    print("%d layers in %d groups checked in %.1f s" % (layers, len(GROUPS), time.time() - start))
    print("%d passed, %d failed" % (tally.passed, tally.failed))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
