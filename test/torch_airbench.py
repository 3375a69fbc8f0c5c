#!/usr/bin/env python3
"""PyTorch side of test/airbench94.test.ts: the fast94 recipe's components and a few whole steps.

argv[1] is a folder written by the test: manifest.json ({n, testN, batch, epochs, weights: [{name,
shape}] in the tfjs model's order}), train.u8 / test.u8 (NHWC images), train.labels (uint8),
init.f32 (the tfjs model's initial weights, HWIO / [in, out] layouts), flip.u8 (the run's per-image
mirror flags), shifts<e>.i8 and order<e>.i32 per epoch (onepixel's plan), gelu.f32 (GELU inputs).

It runs bench/peer_airbench_torch.py's pieces (Net, whitening_weights, make_optimiser, Lookahead,
epoch_view, tta_logits) on onepixel's plan and writes: whiten.f32 (the whitening filters, HWIO),
views.f32 (epoch 0's and epoch 1's first batch), losses.json (every step's summed loss), final.f32
(the weights after training, tfjs layout and order; moving variances converted to tfjs' biased
update), tta.f32 / plain.f32 (the final model's logits on the test images), gelu_out.f32 and
gelu_grad.f32 (GELU and the gradient of sum(gelu(x)·(1 + x)) in float64). The run is done in float32
and again in float64 (files with 64 before the extension): the float32 run's distance from the
float64 one says how far float32 rounding alone carries a run.

With manifest.at ({epochs, epsilon}) and at_delta.f32 (onepixel's N-FGSM random starts, one batch
of NHWC noise per step), the same run again for `epochs` (a fraction: a few steps), training on
peer.nfgsm's attacked batches from those starts: losses_at / final_at / adv0_at (the first attacked
batch, NHWC in [0, 1]), and the float64 twins.
"""
import importlib.util
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "peer", os.path.join(here, "..", "bench", "peer_airbench_torch.py")
)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)


def key(name):
    layer, w = name.rsplit("/", 1)
    return layer + "." + {
        "kernel": "weight",
        "bias": "bias",
        "gamma": "weight",
        "beta": "bias",
        "moving_mean": "running_mean",
        "moving_variance": "running_var",
    }[w]


def to_torch(a):
    return a.transpose(3, 2, 0, 1) if a.ndim == 4 else (a.T if a.ndim == 2 else a)


def to_tfjs(a):
    return a.transpose(2, 3, 1, 0) if a.ndim == 4 else (a.T if a.ndim == 2 else a)


def main(d):
    m = json.load(open(os.path.join(d, "manifest.json")))
    n, tn, batch = m["n"], m["testN"], m["batch"]
    rd = lambda f, t: np.fromfile(os.path.join(d, f), dtype=t)
    xtr = torch.from_numpy(rd("train.u8", np.uint8).reshape(n, 32, 32, 3).transpose(0, 3, 1, 2).copy())
    ytr = torch.from_numpy(rd("train.labels", np.uint8).astype(np.int64))
    xte = torch.from_numpy(rd("test.u8", np.uint8).reshape(tn, 32, 32, 3).transpose(0, 3, 1, 2).copy())
    xtr0, xte0 = peer.normalise(xtr), peer.normalise(xte)
    out = lambda f, a: np.ascontiguousarray(a, dtype="<f4").tofile(os.path.join(d, f))

    def run(dtype, sfx, epochs=m["epochs"], attack=None, floor=None):
        # float32 on one thread, as the tolerances were measured (the float32 run's distance from
        # float64 depends on the summation order); float64, the slow reference, on two (the suite
        # runs one test at a time).
        torch.set_num_threads(1 if dtype == torch.float32 else 2)
        net = peer.Net().to(dtype)
        xtr, xte = xtr0.to(dtype), xte0.to(dtype)
        sd = net.state_dict()
        raw, off = rd("init.f32", "<f4"), 0
        new = {}
        for w in m["weights"]:
            size = int(np.prod(w["shape"]))
            a = to_torch(raw[off : off + size].reshape(w["shape"]))
            off += size
            k = key(w["name"])
            assert tuple(sd[k].shape) == a.shape, (k, a.shape)
            new[k] = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
        net.load_state_dict(new, strict=False)
        with torch.no_grad():
            net.whiten.weight.copy_(peer.whitening_weights(xtr0[: peer.HYP["whiten_images"]], floor))
        out = lambda f, a: np.ascontiguousarray(a, dtype="<f4").tofile(os.path.join(d, f))
        out(f"whiten{sfx}.f32", to_tfjs(net.whiten.weight.detach().numpy()))

        steps_per_epoch = n // batch
        total = math.ceil(steps_per_epoch * epochs)
        opt, base = peer.make_optimiser(net, batch)
        la = peer.Lookahead(net)
        flip = torch.from_numpy(rd("flip.u8", np.uint8).astype(bool))
        pad = peer.HYP["translate"]
        xpad = F.pad(torch.where(flip.view(-1, 1, 1, 1), xtr.flip(-1), xtr), (pad,) * 4, mode="reflect")
        # BatchNorm sizes (n per channel) at each norm layer, for the moving-variance conversion.
        sizes = {}
        hooks = [
            mod.register_forward_hook(
                lambda mod, i, o, name=name: sizes.__setitem__(name, o.shape[0] * o.shape[2] * o.shape[3])
            )
            for name, mod in net.named_modules()
            if isinstance(mod, torch.nn.BatchNorm2d)
        ]
        losses, views, step = [], [], 0
        for epoch in range(math.ceil(total / steps_per_epoch)):
            net.whiten.bias.requires_grad = epoch < peer.HYP["whiten_bias_epochs"]
            shifts = torch.from_numpy(rd(f"shifts{epoch}.i8", np.int8).astype(np.int64).reshape(n, 2))
            order = torch.from_numpy(rd(f"order{epoch}.i32", np.int32).astype(np.int64))
            xe = peer.epoch_view(xpad, shifts, epoch, pad)
            net.train()
            for i in range(steps_per_epoch):
                if step >= total:
                    break
                idx = order[i * batch : (i + 1) * batch]
                if i == 0 and epoch < 2:
                    views.append(xe[idx].permute(0, 2, 3, 1).numpy())
                for g, b in zip(opt.param_groups, base):
                    g["lr"] = b * peer.lr_factor(step, total)
                xb = xe[idx]
                if attack is not None:
                    delta = torch.from_numpy(attack[step].reshape(batch, 32, 32, 3).transpose(0, 3, 1, 2).copy())
                    xb = peer.nfgsm(net, xb, ytr[idx], m["at"]["epsilon"], peer._Null, delta=delta)
                    if step == 0:  # the first attacked batch, NHWC in [0, 1]
                        adv01 = xb * peer.STD_T.to(dtype) + peer.MEAN_T.to(dtype)
                        out(f"adv0{sfx}.f32", adv01.permute(0, 2, 3, 1).detach().numpy())
                before = {k: v.clone() for k, v in net.state_dict().items() if "running_var" in k}
                loss = F.cross_entropy(
                    net(xb), ytr[idx], label_smoothing=peer.HYP["label_smoothing"], reduction="none"
                ).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                # tfjs moves the moving variance towards the biased batch variance: undo torch's n/(n-1)
                with torch.no_grad():
                    for k, old in before.items():
                        cnt = sizes[k.rsplit(".", 1)[0]]
                        rv = net.state_dict()[k]
                        mom = 1 - peer.HYP["bn_momentum"]
                        rv.copy_((1 - mom) * old + (rv - (1 - mom) * old) * (cnt - 1) / cnt)
                step += 1
                losses.append(loss.item())
                if step % 5 == 0:
                    la.update(net, 0.95**5 * (step / total) ** 3)
                if step >= total:
                    la.update(net, 1.0)
        for h in hooks:
            h.remove()
        out(f"views{sfx}.f32", np.concatenate([v.ravel() for v in views]))
        json.dump(losses, open(os.path.join(d, f"losses{sfx}.json"), "w"))
        sd = net.state_dict()
        out(f"final{sfx}.f32", np.concatenate([to_tfjs(sd[key(w["name"])].numpy()).ravel() for w in m["weights"]]))
        net.eval()
        with torch.no_grad():
            out(f"tta{sfx}.f32", peer.tta_logits(net, xte).float().numpy())
            out(f"plain{sfx}.f32", net(xte).float().numpy())

    run(torch.float32, "")
    run(torch.float64, "64")
    if "at" in m:
        starts = rd("at_delta.f32", "<f4").reshape(-1, batch * 32 * 32 * 3)
        floor = m["at"]["whitenFloor"]
        run(torch.float32, "_at", m["at"]["epochs"], starts, floor)
        run(torch.float64, "64_at", m["at"]["epochs"], starts, floor)
    g = torch.from_numpy(rd("gelu.f32", "<f4").astype(np.float64)).requires_grad_()
    y = F.gelu(g)
    (y * (1 + g.detach())).sum().backward()
    out("gelu_out.f32", y.detach().numpy())
    out("gelu_grad.f32", g.grad.numpy())


if __name__ == "__main__":
    main(sys.argv[1])
