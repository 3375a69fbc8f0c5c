#!/usr/bin/env python3
"""Peer implementation for the benchmark: the authors' official OPS search, transcribed to numpy.

Reproduces the cost structure of `pixel_search` in cychomatica/One-Pixel-Shotcut (perturb.py),
written independently here: for each class in label order, scale the class's images to [0, 1]
(float64), then in Python loops over every position (row, col) and every corner colour v in
{0,1}^3, score the candidate as mean(|v - x|) / std(|v - x|) over the class's images and channels,
with numpy doing the work over the images. As in the authors' code the deviation array is formed
once for the mean and once for the std, a (position, colour) pair taken by an earlier class scores
0, and the winner is the last entry of an argsort of the flattened score table.

Reads the CIFAR-10 binary batches itself (not timed), times only the search, and prints one JSON
object on stdout: seconds, the chosen pixels per class, numpy version, peak RSS.

Usage: peer_ops_numpy.py DATA_DIR [--classes N]
  --classes N  search only the first N classes (the JSON says so; for slow machines)
"""

import json
import os
import platform
import resource
import sys
import time

import numpy as np

SIDE = 32
PLANE = SIDE * SIDE
RECORD = 1 + 3 * PLANE
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]


def read_cifar10_train(data_dir):
    """Training images as (N, 32, 32, 3) uint8 (contiguous, like torchvision's CIFAR10.data) and
    the labels as a Python list (like its .targets)."""
    raw = np.concatenate(
        [np.fromfile(os.path.join(data_dir, name), dtype=np.uint8) for name in TRAIN_FILES]
    )
    if raw.size % RECORD != 0:
        raise SystemExit(f"{data_dir}: training batches are not whole {RECORD}-byte records")
    records = raw.reshape(-1, RECORD)
    labels = records[:, 0].tolist()
    images = np.ascontiguousarray(records[:, 1:].reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))
    return images, labels


def colour_bits(v, channels):
    """Colour index v -> per-channel target in {0., 1.}, most significant bit first (R, G, B)."""
    return np.array([(v >> (channels - 1 - c)) & 1 for c in range(channels)], dtype=float)


def search_official(images, targets, classes):
    """The official objective, candidate by candidate; returns [(row, col, colour index, score)].

    `targets` is a Python list of labels, as torchvision's CIFAR10.targets is. The per-candidate
    work mirrors the authors' loop: the colour vector is built per candidate, and the pixel column
    is sliced and its deviation computed once inside the mean and once inside the std.
    """
    _, height, width, channels = images.shape
    colours = 2**channels
    taken = []  # [position, colour] pairs chosen by earlier classes
    chosen = []
    for k in range(classes):
        members = np.where(np.array(targets) == k)[0]
        x = images[members] / 255
        scores = np.zeros((height * width, colours), dtype=float)
        for point in range(height * width):
            row, col = point // width, point % width
            for v in range(colours):
                target = colour_bits(v, channels)
                if [point, v] in taken:
                    scores[point, v] = 0
                else:
                    mean = np.mean(np.abs(target - x[:, row, col, :]))
                    std = np.std(np.abs(target - x[:, row, col, :]))
                    scores[point, v] = mean / std
        ranking = np.unravel_index(np.argsort(scores, axis=None), scores.shape)
        point, v = int(ranking[0][-1]), int(ranking[1][-1])
        best = scores[point, v]
        ties = int(np.count_nonzero(scores == best))
        taken.append([point, v])
        chosen.append((point // width, point % width, v, float(best), ties))
    return chosen


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    data_dir = argv[1]
    classes = 10
    if "--classes" in argv:
        classes = int(argv[argv.index("--classes") + 1])
    images, labels = read_cifar10_train(data_dir)
    t0 = time.perf_counter()
    chosen = search_official(images, labels, classes)
    seconds = time.perf_counter() - t0
    out = {
        "peer": "numpy transcription of the authors' official OPS search",
        "objective": "official",
        "images": len(labels),
        "classesSearched": classes,
        "seconds": seconds,
        "pixels": [
            {
                "label": k,
                "row": row,
                "col": col,
                "value": [int(b) * 255 for b in colour_bits(v, images.shape[3])],
                "score": score,
                "tiesAtTop": ties,
            }
            for k, (row, col, v, score, ties) in enumerate(chosen)
        ],
        "numpy": np.__version__,
        "python": platform.python_version(),
        # ru_maxrss is in KiB on Linux.
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
