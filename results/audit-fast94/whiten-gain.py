"""How far an L-inf perturbation of 8/255 can move each of airbench94's whitened channels, in
standard deviations of the whitened signal: the recipe's floor (5e-4) and adversarial training's
(12 (eps/0.2435)^2). Whitening as the recipe computes it: 2x2 patches of the first 5,000 training
images of data_batch_1, normalised by the CIFAR-10 mean and std.
Run: python3 results/audit-fast94/whiten-gain.py ../shared/data/cifar-10-batches-bin"""
import sys
import numpy as np

raw = np.fromfile(f"{sys.argv[1]}/data_batch_1.bin", dtype=np.uint8).reshape(-1, 3073)[:5000, 1:]
x = raw.reshape(-1, 3, 32, 32).astype(np.float64) / 255
mean = np.array([0.4914, 0.4822, 0.4465])[None, :, None, None]
std = np.array([0.247, 0.2435, 0.2616])[None, :, None, None]
x = (x - mean) / std
p = np.stack([x[:, :, i : i + 31, j : j + 31] for i in range(2) for j in range(2)], 2)
p = p.transpose(0, 3, 4, 1, 2).reshape(-1, 12)  # patch values c-major, (dy, dx) minor
cov = p.T @ p / len(p)
lam, vec = np.linalg.eigh(cov)
eps = 8 / 255
chan_std = np.repeat(std.ravel(), 4)  # patch element k's channel std
print("whitened units: the worst shift an 8/255 perturbation makes / the signal's own std there")
print("lambda     floor 5e-4: shift / signal std    floor 0.199: shift / signal std")
floor_r = 12 * (eps / 0.2435) ** 2
for k in range(12):
    v = vec[:, k]
    shift = np.abs(v / chan_std).sum() * eps  # worst case: the eps-ball corner along v
    rows = []
    for floor in (5e-4, floor_r):
        s = 1 / np.sqrt(lam[k] + floor)
        rows.append(f"{shift * s:6.2f} / {np.sqrt(lam[k]) * s:4.2f}")
    print(f"{lam[k]:.5f}   {rows[0]:>24}        {rows[1]:>24}")
print(f"robust floor = {floor_r:.5f}")
