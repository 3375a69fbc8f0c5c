/**
 * The torch side of the tests that compare a LeNet-5 with PyTorch (at-parity, robust): the
 * preamble of their Python scripts (imports, float64, the arguments file as `a`, the LeNet-5 and
 * the conversion of onepixel's NHWC weights into torch's layout), and their skip reason.
 */
import { noNumpy, runPython } from './helpers.js';

export const TORCH_LENET = String.raw`
import json, sys
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
a = json.load(open(sys.argv[1]))
class LeNet(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(3, 6, 5); s.conv2 = nn.Conv2d(6, 16, 5)
        s.fc1 = nn.Linear(400, 120); s.fc2 = nn.Linear(120, 84); s.fc3 = nn.Linear(84, 10)
    def forward(s, x):
        x = F.max_pool2d(F.relu(s.conv1(x)), 2); x = F.max_pool2d(F.relu(s.conv2(x)), 2)
        x = x.reshape(x.shape[0], -1)
        return s.fc3(F.relu(s.fc2(F.relu(s.fc1(x)))))
def to_torch(name, shape, v):
    k = np.asarray(v, dtype=np.float64).reshape(shape)
    if name.endswith('kernel') and len(shape) == 4: return k.transpose(3, 2, 0, 1)
    if name.startswith('fc1') and name.endswith('kernel'):  # NHWC flatten (h, w, c) -> (c, h, w)
        return k.reshape(5, 5, 16, 120).transpose(3, 2, 0, 1).reshape(120, 400)
    if name.endswith('kernel'): return k.T
    return k
`;

/** Why the torch comparison cannot run here, or false. */
export function torchMissing(): false | string {
  const r = noNumpy();
  if (r) return r;
  try {
    runPython('import torch');
    return false;
  } catch {
    return '/usr/bin/python3 lacks torch';
  }
}
