"""Does the protecting pixel survive the trainer's resize? For each protected copy of the photo
stand-in, loads training PNGs as torchvision's ImageFolder does (PIL, RGB), applies
torchvision.transforms.Resize(S) (bilinear, antialiased: the default), and counts the images whose
class pixel is exactly its extreme value at the output pixel it should land on: the manifest's
(row, col) for a --pipeline copy (searched at S×S), (row·S/H, col·S/W) rounded down for a plain copy.
Also the mean absolute distance of that output pixel from the extreme value, per channel.

  /usr/bin/python3 bench/photos_landed.py S PER_CLASS DIR [DIR…]  > results/…/landed.json
"""
import glob, json, sys
import numpy as np
from PIL import Image
import torchvision
import torchvision.transforms as T

size, per_class, dirs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
resize = T.Resize(size)
out = {"torchvision": torchvision.__version__, "transform": f"Resize({size})", "copies": {}}
for d in dirs:
    m = json.load(open(f"{d}/manifest.json"))
    aware = "pipeline" in m
    extreme = n = 0
    dist = 0.0
    for c in m["classes"]:
        p = c["pixels"][0]
        r, col = (p["row"], p["col"]) if aware else (p["row"] * size // m["height"], p["col"] * size // m["width"])
        for f in sorted(glob.glob(f"{d}/train/*_{c['name']}/*.png"))[:per_class]:
            a = np.asarray(resize(Image.open(f).convert("RGB"))).astype(int)
            v = a[r, col]
            n += 1
            extreme += int(list(v) == p["value"])
            dist += float(np.abs(v - np.array(p["value"])).mean())
    out["copies"][d] = {
        "pipeline": m.get("pipeline", {}).get("pipeline"),
        "blockMargin": m.get("pipeline", {}).get("blockMargin"),
        "images": n,
        "extreme": extreme,
        "meanAbsFromExtreme": dist / n,
    }
print(json.dumps(out, indent=2))
