"""ONNX vector-field fixtures for `--field onnx:FILE`, written by torch.onnx.export, and the PyTorch
reference gradients the tests compare odeness against. Run with Debian's python3-torch:

  /usr/bin/python3 scripts/onnx-fixtures.py write test/fixtures/onnx   # (re)write the .onnx files
  /usr/bin/python3 scripts/onnx-fixtures.py grads < request.json         # loss gradients (see grads())

Each field maps the state z [batch, ...] (and, for time fields, t [1]) to dz/dt with z's shape. The
fixtures are seeded, small, and exported with a symbolic batch, so the files carry the exporter's shape
arithmetic (Shape, Gather, Unsqueeze, Concat, Reshape, Expand) around it.
"""
import json
import sys

import torch
from torch import nn

OPSET = 13


class MlpTime(nn.Module):
    """tanh MLP over [z, t]: t broadcast to a column and concatenated (native: mlp:width=16,time)."""

    def __init__(self, d=3, width=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d + 1, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, d))

    def forward(self, z, t):
        tcol = t.reshape(1, 1).expand(z.shape[0], 1)
        return self.net(torch.cat([z, tcol], dim=1))


class Conv1dSphere(nn.Module):
    """The paper's sphere field: z [B, D] as 1 channel; Conv1d 1→c (k1), ReLU, c→c (k3, pad 1), ReLU, c→1 (k1)."""

    def __init__(self, channels=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, channels, 1), nn.ReLU(), nn.Conv1d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv1d(channels, 1, 1)
        )

    def forward(self, z):
        return self.net(z.view(z.shape[0], 1, -1)).view(z.shape[0], -1)


class Conv2dImage(nn.Module):
    """The paper's image field, small: Conv2d C→c (1×1), ReLU, c→c (3×3, pad 1), ReLU, c→C (1×1)."""

    def __init__(self, c=2, channels=8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c, channels, 1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, c, 1)
        )

    def forward(self, z):
        return self.net(z)


class SoftplusPow(nn.Module):
    """A softplus layer damped in time, minus a cubic: W2·softplus(W1·z + b1)·exp(−t) − 0.1·z³."""

    def __init__(self, d=3, width=16):
        super().__init__()
        self.inner = nn.Linear(d, width)
        self.outer = nn.Linear(width, d)

    def forward(self, z, t):
        return self.outer(nn.functional.softplus(self.inner(z))) * torch.exp(-t) - 0.1 * torch.pow(z, 3)


# name → (module factory, per-sample state shape, time input)
FIXTURES = {
    "mlp-time": (lambda: MlpTime(), [3], True),
    "conv1d-sphere": (lambda: Conv1dSphere(), [3], False),
    "conv2d-image": (lambda: Conv2dImage(), [2, 4, 4], False),
    "softplus-pow": (lambda: SoftplusPow(), [3], True),
}


def build(name):
    torch.manual_seed(sum(map(ord, name)))
    factory, shape, time = FIXTURES[name]
    return factory(), shape, time


def write(outdir):
    for name in FIXTURES:
        module, shape, time = build(name)
        module.eval()
        z = torch.randn(2, *shape)
        inputs, names = ((z, torch.zeros(1)), ["z", "t"]) if time else ((z,), ["z"])
        torch.onnx.export(
            module, inputs, f"{outdir}/{name}.onnx", input_names=names, output_names=["dz"], opset_version=OPSET,
            dynamic_axes={"z": {0: "batch"}, "dz": {0: "batch"}}, do_constant_folding=True,
        )
        print(f"wrote {outdir}/{name}.onnx")


def rk4(f, z, t0, t1, steps):
    h = (t1 - t0) / steps
    t = t0
    for _ in range(steps):
        k1 = f(t, z)
        k2 = f(t + h / 2, z + h / 2 * k1)
        k3 = f(t + h / 2, z + h / 2 * k2)
        k4 = f(t + h, z + h * k3)
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t = t + h
    return z


def grads():
    """stdin: {fixture, params {name: {shape, data}}, x, labels, augment, steps, t0, t1}; stdout: {loss, grads}.

    The classifier around the field is odeness's: zero augmentation of the feature/channel axis, rk4 with a
    fixed step, the state flattened into a linear head (head.weight [S, classes]), mean cross-entropy.
    """
    req = json.load(sys.stdin)
    torch.set_default_dtype(torch.float64)
    module, shape, time = build(req["fixture"])
    module = module.double()
    tensors = {k: torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"]).requires_grad_() for k, v in req["params"].items()}
    module.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("head.")})
    named = dict(module.named_parameters())
    for k in list(named):
        named[k] = tensors[k]
    batch = len(req["labels"])
    x = torch.tensor(req["x"], dtype=torch.float64).reshape(batch, -1 if len(shape) == 1 else None or -1)
    in_shape = [s - (req["augment"] if i == 0 else 0) for i, s in enumerate(shape)]
    x = x.reshape(batch, *in_shape)
    pad = [0, 0] * (len(shape) - 1) + [0, req["augment"]]
    z0 = nn.functional.pad(x, pad)

    def f(t, z):
        args = (z, torch.full([1], float(t))) if time else (z,)
        return torch.func.functional_call(module, named, args) if hasattr(torch, "func") else module(*args)

    z1 = rk4(f, z0, req["t0"], req["t1"], req["steps"])
    logits = z1.reshape(batch, -1) @ tensors["head.weight"] + tensors["head.bias"]
    loss = nn.functional.cross_entropy(logits, torch.tensor(req["labels"]))
    loss.backward()
    json.dump({"loss": loss.item(), "grads": {k: v.grad.reshape(-1).tolist() for k, v in tensors.items()}}, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1:2] == ["write"]:
        write(sys.argv[2])
    elif sys.argv[1:2] == ["grads"]:
        grads()
    else:
        sys.exit("usage: onnx-fixtures.py write OUTDIR | grads < request.json")
