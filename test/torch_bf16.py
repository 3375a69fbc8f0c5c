"""PyTorch reference for test/native-bf16.test.ts: convolutions (forward, input and filter
gradients) and matrix products as PyTorch computes them under bf16 autocast on the CPU
(channels_last), plus the exact (float64) results of the same operation on the bf16-rounded inputs
and on the unrounded ones, and the bound terms the test's tolerances are made of.

argv[1] is a folder holding cases.json ([{kind: 'conv', n, h, w, ci, kh, kw, co, stride, pad} or
{kind: 'matmul', m, k, n, ta, tb}]) and, per case i, its inputs as little-endian float32 in tfjs
layouts: conv: i.x.f32 (NHWC), i.w.f32 (HWIO), i.dy.f32 (NHWC); matmul: i.a.f32, i.b.f32 (as
stored: A is K x M when ta, B is N x K when tb). For every output o (conv: y, dx, dw; matmul: c)
it writes, in the same layouts, as float32:
  i.o.torch.f32  PyTorch bf16 autocast, channels_last (its bf16 result, widened to float32)
  i.o.round.f32  float64 on the bf16-rounded inputs (what bf16 inputs with exact accumulation give)
  i.o.exact.f32  float64 on the unrounded inputs (what fp32 arithmetic approximates)
  i.o.abs.f32    float64 of the same operation on |bf16-rounded inputs| (sum of |products|: the
                 scale of every rounding error of that output element)
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)  # the other core runs the tfjs side


def load(d, name, shape):
    return torch.from_numpy(np.fromfile(os.path.join(d, name), dtype='<f4').reshape(shape).copy())


def save(d, name, t):
    np.ascontiguousarray(t.detach().to(torch.float32).numpy(), dtype='<f4').tofile(os.path.join(d, name))


def rounded(t):
    """t rounded to bf16 (round to nearest even, as torch's and oneDNN's conversions), as float64."""
    return t.to(torch.bfloat16).to(torch.float64)


def conv_all(x, w, dy, stride, pad):
    """y, dx, dw of conv2d(x, w) with upstream gradient dy (NCHW / OIHW tensors), by autograd."""
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    y = F.conv2d(x, w, stride=stride, padding=pad)
    dx, dw = torch.autograd.grad(y, (x, w), dy.to(y.dtype))
    return y.detach(), dx, dw


def conv_case(d, i, c):
    n, h, w_, ci, kh, kw, co = (c[k] for k in ('n', 'h', 'w', 'ci', 'kh', 'kw', 'co'))
    s, p = c['stride'], c['pad']
    ho = (h + 2 * p - kh) // s + 1
    wo = (w_ + 2 * p - kw) // s + 1
    x = load(d, f'{i}.x.f32', (n, h, w_, ci)).permute(0, 3, 1, 2)
    w = load(d, f'{i}.w.f32', (kh, kw, ci, co)).permute(3, 2, 0, 1)
    dy = load(d, f'{i}.dy.f32', (n, ho, wo, co)).permute(0, 3, 1, 2)
    # PyTorch at its best: channels_last, autocast bf16 (the weight is cast inside autocast, so its
    # gradient comes back in fp32 but computed from bf16 operands).
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    wc = w.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = F.conv2d(xc, wc, stride=s, padding=p)
    dxt, dwt = torch.autograd.grad(y, (xc, wc), dy.to(y.dtype).contiguous(memory_format=torch.channels_last))
    out = {'torch': (y, dxt, dwt)}
    out['round'] = conv_all(rounded(x), rounded(w), rounded(dy), s, p)
    out['exact'] = conv_all(x.double(), w.double(), dy.double(), s, p)
    out['abs'] = conv_all(rounded(x).abs(), rounded(w).abs(), rounded(dy).abs(), s, p)
    for kind, (y_, dx_, dw_) in out.items():
        save(d, f'{i}.y.{kind}.f32', y_.permute(0, 2, 3, 1))
        save(d, f'{i}.dx.{kind}.f32', dx_.permute(0, 2, 3, 1))
        save(d, f'{i}.dw.{kind}.f32', dw_.permute(2, 3, 1, 0))
    return {'torchDtype': str(y.dtype)}


def matmul_case(d, i, c):
    m, k, n = c['m'], c['k'], c['n']
    a = load(d, f'{i}.a.f32', (k, m) if c['ta'] else (m, k))
    b = load(d, f'{i}.b.f32', (n, k) if c['tb'] else (k, n))
    a = a.T if c['ta'] else a
    b = b.T if c['tb'] else b
    with torch.autocast('cpu', dtype=torch.bfloat16):
        t = a @ b
    save(d, f'{i}.c.torch.f32', t)
    save(d, f'{i}.c.round.f32', rounded(a) @ rounded(b))
    save(d, f'{i}.c.exact.f32', a.double() @ b.double())
    save(d, f'{i}.c.abs.f32', rounded(a).abs() @ rounded(b).abs())
    return {'torchDtype': str(t.dtype)}


def main(d):
    with open(os.path.join(d, 'cases.json')) as f:
        cases = json.load(f)
    info = [conv_case(d, i, c) if c['kind'] == 'conv' else matmul_case(d, i, c)
            for i, c in enumerate(cases)]
    with open(os.path.join(d, 'out.json'), 'w') as f:
        json.dump(info, f)


if __name__ == '__main__':
    main(sys.argv[1])
