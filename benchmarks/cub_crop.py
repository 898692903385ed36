"""How long lesson 5's first run spends cropping and shrinking the CUB bird photos, per photo.

Makes a folder laid out as CUB-200-2011 (`images.txt`, `bounding_boxes.txt`, `images/`) holding `--count` JPEG
photos made from four real photos scikit-image ships (a cat, coffee, an astronaut, a rocket), resized to 500 x 375
pixels and slightly turned, each with a box of 80 to 375 pixels a side around its "bird". Then it times
`utils.birds.load_cub`, the function the lesson's first run calls on the 11,788 CUB photos, several times, and writes
the time per photo and that time times 11,788 to `benchmarks/results/cub_crop.json`. The sizes are assumptions:
the files are about 88 KB each (CUB's 1.1 GB over 11,788 photos is about 93 KB a photo), and CUB's own photo and
box sizes vary. The files sit in the operating system's cache, so reading 1.1 GB from a disk comes on top:

    .venv/bin/python benchmarks/cub_crop.py
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from skimage import data as skimage_data

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from utils import birds  # noqa: E402

CUB_PHOTOS = 11788
SIZE = (500, 375)  # width, height


def make_cub(folder, count, seed=0):
    """Writes `count` 500 x 375 JPEGs and CUB's two index files into `folder`."""
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(getattr(skimage_data, name)()).convert("RGB").resize(SIZE, Image.LANCZOS)
               for name in ("chelsea", "coffee", "astronaut", "rocket")]
    (folder / "images" / "001.Bird").mkdir(parents=True)
    names, boxes = [], []
    for index in range(1, count + 1):
        photo = sources[index % len(sources)].rotate(float(rng.uniform(-5, 5)))  # not four identical files
        photo.save(folder / "images" / "001.Bird" / f"bird_{index}.jpg", quality=97)  # about 88 KB
        width, height = rng.uniform(80, 375), rng.uniform(80, 375)
        x, y = rng.uniform(0, SIZE[0] - width), rng.uniform(0, SIZE[1] - height)
        names.append(f"{index} 001.Bird/bird_{index}.jpg")
        boxes.append(f"{index} {x:.1f} {y:.1f} {width:.1f} {height:.1f}")
    (folder / "images.txt").write_text("\n".join(names) + "\n")
    (folder / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="photos (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over them (default 3)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cub_crop.json"))
    args = parser.parse_args()
    if args.count < 1 or args.repeats < 1:
        parser.error("--count and --repeats must be 1 or more")
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        make_cub(folder, args.count)
        files = list((folder / "images").rglob("*.jpg"))
        kilobytes = sum(path.stat().st_size for path in files) / len(files) / 1024
        load_before = os.getloadavg()
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            images = birds.load_cub(folder, progress=False)
            seconds.append(time.perf_counter() - start)
    per_photo_ms = sorted(1000 * s / args.count for s in seconds)
    record = {
        "benchmark": "benchmarks/cub_crop.py", "command": " ".join([".venv/bin/python", *sys.argv]),
        "photos": args.count, "photo_size": list(SIZE), "output_shape": list(images.shape),
        "kilobytes_per_photo": round(kilobytes),
        "ms_per_photo": {"min": round(per_photo_ms[0], 3), "median": round(per_photo_ms[len(seconds) // 2], 3),
                         "max": round(per_photo_ms[-1], 3)},
        "seconds_for_all_cub_photos": {name: round(round(ms, 3) * CUB_PHOTOS / 1000, 1)
                                       for name, ms in (("min", per_photo_ms[0]), ("max", per_photo_ms[-1]))},
        "cub_photos": CUB_PHOTOS, "cpus": os.cpu_count(), "load_average_before": [round(v, 2) for v in load_before],
        "machine": platform.machine(), "python": platform.python_version(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    pathlib.Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"{per_photo_ms[0]:.2f}-{per_photo_ms[-1]:.2f} ms per photo: "
          f"{record['seconds_for_all_cub_photos']['min']}-{record['seconds_for_all_cub_photos']['max']} s "
          f"for CUB's {CUB_PHOTOS:,} photos (files in the cache); written to {args.out}")


if __name__ == "__main__":
    main()
