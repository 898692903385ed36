"""Photos at least as big as Kaggle's originals, made from smaller ones, to time lesson 3 on them.

Learners train lesson 3 on Kaggle's photos at their original sizes (an estimate, not measured here: up to about
500 pixels on a side), while the dev set here was resized to 200x200. A 500x375 JPEG has 4.7 times the pixels to
decode of a 200x200 one, and lesson 3 decodes every photo once before it caches them. This script
writes `--photos` photos of SOURCE (half cats, half dogs; the last ones of each class by number, while `real_pets.py`
picks at random: 791 of the 1,760 are among the benchmark's) into DEST as Kaggle's flat `train/cat.N.jpg`, each enlarged
(Lanczos) to 500 pixels on one side and 280 to 500 on the other, landscape 7 times in 10, JPEG quality 90:

    .venv/bin/python benchmarks/enlarge_photos.py ../shared/data/dogscats-dev /tmp/enlarged --photos 1760
    .venv/bin/python benchmarks/real_pets.py --data /tmp/enlarged --photos 1760 \\
        --out benchmarks/results/real_pets_enlarged.json

Enlarged photos carry no more detail than the small ones: this measures time at original sizes, not what
more detail would do to accuracy (`benchmarks/README.md`, cnn_candidates, for that).
"""

import argparse
import pathlib
import random
import sys

from PIL import Image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a folder of Kaggle's flat layout: train/cat.N.jpg and train/dog.N.jpg")
    parser.add_argument("dest", help="a new folder to write DEST/train/ into")
    parser.add_argument("--photos", type=int, default=1760)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    source, dest = pathlib.Path(args.source) / "train", pathlib.Path(args.dest) / "train"
    if dest.exists():
        sys.exit(f"error: {dest} exists; give a new folder")
    rng = random.Random(args.seed)
    chosen = {}
    for name in ("cat", "dog"):
        files = sorted(source.glob(f"{name}.*.jpg"), key=lambda path: int(path.stem.split(".")[1]))
        if len(files) < args.photos // 2:
            sys.exit(f"error: {source} has {len(files)} {name} photos; --photos {args.photos} needs "
                     f"{args.photos // 2}")
        chosen[name] = files[-(args.photos // 2):]
    dest.mkdir(parents=True)
    for files in chosen.values():
        for path in files:
            short = rng.randint(280, 500)
            size = (500, short) if rng.random() < 0.7 else (short, 500)
            Image.open(path).convert("RGB").resize(size, Image.LANCZOS).save(dest / path.name, quality=90)
    print(f"{sum(map(len, chosen.values()))} photos written to {dest}")


if __name__ == "__main__":
    main()
