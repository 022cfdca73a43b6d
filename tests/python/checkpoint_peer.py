"""Python half of the checkpoint interop tests (driven by tests/cpp/test_checkpoint_interop.cpp).

  checkpoint_peer.py first DIR OPT     makes DIR/data.pt, trains 10 steps, saves DIR/py10.pt (a
                                       hand-written checkpoint), trains 10 more, saves DIR/py20.pt
  checkpoint_peer.py resume DIR OPT    loads DIR/cpp10.pt (written by C++) into a fresh model and
                                       a default-configured optimizer, trains 10 steps, saves
                                       DIR/py_resumed20.pt

The model is Linear(4, 8) -> Tanh -> Linear(8, 2) trained full-batch on MSE; OPT picks one of the
configurations below (the same ones the C++ side builds).
"""
import math
import sys

import torch

CONFIGS = {
    "adam": lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.02, betas=(0.9, 0.95), weight_decay=0.1),
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True),
}
# Deliberately different: resuming must restore the saved hyperparameters.
DEFAULTS = {
    "adam": lambda p: torch.optim.Adam(p),
    "adamw": lambda p: torch.optim.AdamW(p),
    "sgd": lambda p: torch.optim.SGD(p, lr=1.0),
    "rmsprop": lambda p: torch.optim.RMSprop(p),
}


def model():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def data():
    # A formula, not the RNG, so that nothing depends on the generator's state.
    n = torch.arange(32 * 4, dtype=torch.float32).reshape(32, 4)
    x = torch.sin(n * 0.37) + 0.1 * torch.cos(n * 1.3)
    y = torch.stack([torch.sin(x.sum(1)), torch.cos(x[:, 0] * x[:, 1])], 1)
    return x, y


def train(net, opt, x, y, steps):
    loss = None
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()
    return float(loss)


def first(d, name):
    torch.manual_seed(1)
    x, y = data()
    torch.save({"x": x, "y": y}, f"{d}/data.pt")
    net = model()
    opt = CONFIGS[name](net.parameters())
    loss = train(net, opt, x, y, 10)
    torch.save({"epoch": 10, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(),
                "loss": loss, "note": "from python", "lr_history": [0.1, 0.2]}, f"{d}/py10.pt")
    train(net, opt, x, y, 10)
    torch.save(net.state_dict(), f"{d}/py20.pt")


def resume(d, name):
    x, y = data()
    ck = torch.load(f"{d}/cpp10.pt")
    assert ck["epoch"] == 10 and math.isfinite(ck["loss"]), ck.keys()
    assert ck["metadata"]["run"] == "interop", ck["metadata"]
    net = model()
    opt = DEFAULTS[name](net.parameters())
    net.load_state_dict(ck["model_state_dict"])
    opt.load_state_dict(ck["optimizer_state_dict"])
    train(net, opt, x, y, 10)
    torch.save(net.state_dict(), f"{d}/py_resumed20.pt")


if __name__ == "__main__":
    {"first": first, "resume": resume}[sys.argv[1]](sys.argv[2], sys.argv[3])
