"""Reads a verbose-step.mjs log (ONEDNN_VERBOSE=1): per primitive kind and shape, the time of the
timed steps and the GFLOP/s of convolutions and matrix products; their sum against the step."""
import collections, json, re, sys

lines = open(sys.argv[1]).read().split('\n')
start = lines.index('--- timed steps')
summary = json.loads([l for l in lines[start:] if l.startswith('{')][-1])
steps = summary['steps']
agg = collections.defaultdict(lambda: [0.0, 0.0])  # key -> [ms, flop]
def conv_flop(desc):
    g = dict(re.findall(r'([a-z]+)(\d+)', desc.replace('_', ' ')))
    mb, ic, oc = int(g['mb']), int(g['ic']), int(g['oc'])
    oh, kh = int(g['oh']), int(g['kh'])
    ow, kw = int(g.get('ow', oh)), int(g.get('kw', kh))
    return 2 * mb * ic * oc * oh * ow * kh * kw / int(g.get('g', 1))
def matmul_flop(desc):
    a, b = desc.split(':')[:2]
    da, db = [int(v) for v in a.split('x')], [int(v) for v in b.split('x')]
    batch = 1
    for v in da[:-2]: batch *= v
    return 2 * batch * da[-2] * da[-1] * db[-1]
for l in lines[start:]:
    if not l.startswith('onednn_verbose,exec'): continue
    f = l.split(',')
    kind, impl, prop, desc, ms = f[3], f[4], f[5], f[-2], float(f[-1])
    flop = conv_flop(desc) if kind == 'convolution' else matmul_flop(desc) if kind == 'matmul' else 0
    key = (kind, prop if kind != 'reorder' else '', impl)
    agg[key][0] += ms / steps; agg[key][1] += flop / steps
total = sum(v[0] for v in agg.values())
print(f"step {summary['msPerStep']:.1f} ms ({summary['imgPerS']:.1f} img/s); oneDNN primitives {total:.1f} ms of it")
for k, (ms, flop) in sorted(agg.items(), key=lambda kv: -kv[1][0]):
    rate = f"{flop / ms / 1e6:7.1f} GFLOP/s" if flop else ''
    print(f"{ms:8.1f} ms  {k[0]:12s} {k[1]:18s} {k[2]:28s} {rate}")
flop = sum(v[1] for v in agg.values()); cm = sum(v[0] for v in agg.values() if v[1])
print(f"convolutions + products: {flop / 1e9:.2f} GFLOP in {cm:.1f} ms = {flop / cm / 1e6:.1f} GFLOP/s; "
      f"whole step {flop / summary['msPerStep'] / 1e6:.1f} GFLOP/s")
