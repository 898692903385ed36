"""Bird or not bird: lesson 5's 32x32 images from CIFAR-10 and CUB-200, or the `toy_birds` stand-in.

Introduced in lesson 5 (`05_bird_classifier`); the assembled arrays are cached in `data/birds/`.
"""

import dataclasses
import json
import pathlib
import pickle

import numpy as np
import tqdm

from utils import images as image_files
from utils import paths, synth

CLASS_NAMES = ("not bird", "bird")
IMAGE_SIZE = 32
HELD_OUT = 15_000       # the original's held-out images ...
FULL_SIZE = 71_788      # ... out of CIFAR-10's 60,000 plus CUB's 11,788
VALID_FRACTION = 0.1    # the share of the other images kept for validation (lesson 6 rebuilds lesson 5's split)
CIFAR_FILES = [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]
CIFAR_BIRD = 2  # CIFAR-10's classes: airplane, automobile, bird, ...
PHOTO_PREPARATION = {"fit": "crop", "resample": "lanczos"}  # for lesson 5's model: a centre square, as load_cub


def load_cifar10(folder):
    """Reads CIFAR-10's python pickles (`cifar-10-batches-py/`): all 60,000 images.

    Returns:
        `(images, is_bird)`: uint8 [N, 32, 32, 3] and a boolean [N] array.
    """
    folder = pathlib.Path(folder)
    missing = [name for name in CIFAR_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}: run `python -m utils.data "
                                "download cifar10` (it extracts into data/cifar10/cifar-10-batches-py/).")
    batches = [pickle.loads((folder / name).read_bytes(), encoding="bytes") for name in CIFAR_FILES]
    # Each row is 1,024 red, then 1,024 green, then 1,024 blue values, row by row.
    images = np.concatenate([np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                             for batch in batches])
    return images, np.concatenate([batch[b"labels"] for batch in batches]) == CIFAR_BIRD


def square_box(box, width, height):
    """The smallest square around `box`, centred on it and kept inside the `width` x `height` image.

    Args:
        box: x, y, width, height, as in CUB's `bounding_boxes.txt`.

    Returns:
        (left, top, right, bottom) in whole pixels, for `PIL.Image.crop`.
    """
    x, y, box_width, box_height = box
    side = min(max(box_width, box_height), width, height)
    left = min(max(x + box_width / 2 - side / 2, 0), width - side)
    top = min(max(y + box_height / 2 - side / 2, 0), height - side)
    left, top, side = round(left), round(top), round(side)
    return left, top, min(left + side, width), min(top + side, height)


def load_cub(folder, progress=True):
    """Reads every CUB-200-2011 photo of `folder`, cropped to the `square_box` around its bird and shrunk.

    Returns:
        uint8 array [N, 32, 32, 3], in `images.txt` order.
    """
    folder = pathlib.Path(folder)
    for name in ("images.txt", "bounding_boxes.txt", "images"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} not found: run `python -m utils.data download "
                                    "cub200` (it extracts into data/cub200/CUB_200_2011/).")
    files = dict(line.split(maxsplit=1) for line in (folder / "images.txt").read_text().splitlines()
                 if line.strip())
    boxes = {parts[0]: [float(value) for value in parts[1:5]]
             for parts in map(str.split, (folder / "bounding_boxes.txt").read_text().splitlines()) if parts}
    unboxed = sorted(set(files) - set(boxes))
    if unboxed:
        raise ValueError(f"{folder / 'bounding_boxes.txt'} has no box for image ids {unboxed[:5]}: "
                         "the download looks incomplete; download cub200 again into a new folder.")
    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for index, (image_id, name) in enumerate(tqdm.tqdm(files.items(), desc="cropping CUB birds",
                                                       disable=not progress)):
        photo = image_files.open_photo(folder / "images" / name.strip())
        box = square_box(boxes[image_id], *photo.size)
        images[index] = image_files.shrink(photo, box, (IMAGE_SIZE, IMAGE_SIZE), PHOTO_PREPARATION["resample"])
    return images


def assemble(data_dir=paths.DATA, progress=True):
    """Builds (or loads from `data/birds/`) the bird / not-bird arrays from the downloads.

    Returns:
        `(images, labels, sources)`: uint8 [N, 32, 32, 3], int32 labels (1 =
        bird), and a dict of images per source, e.g. {"cifar10": 60000,
        "cub200": 11788}. None when CIFAR-10 is not downloaded.
    """
    data_dir = paths.resolve(data_dir)
    cifar = data_dir / "cifar10" / "cifar-10-batches-py"
    cub = data_dir / "cub200" / "CUB_200_2011"
    if not cifar.is_dir():
        return None
    names = ["cifar10"] + (["cub200"] if (cub / "images.txt").is_file() else [])
    cache = data_dir / "birds" / f"birds_{'+'.join(names)}.npz"
    if cache.is_file():
        with np.load(cache) as arrays:
            print(f"Loaded the assembled birds from {cache}")
            return arrays["images"], arrays["labels"], json.loads(str(arrays["sources"]))
    images, is_bird = load_cifar10(cifar)
    parts = [images] + ([load_cub(cub, progress=progress)] if "cub200" in names else [])
    sources = {name: len(part) for name, part in zip(names, parts)}
    images = np.concatenate(parts)
    labels = np.pad(is_bird.astype(np.int32), (0, len(images) - len(is_bird)), constant_values=1)  # CUB: all birds
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(cache.stem + ".part.npz")
    np.savez(partial, images=images, labels=labels, sources=json.dumps(sources))
    partial.replace(cache)  # a finished cache or none: an interrupted run leaves no half file
    print(f"Assembled {len(labels):,} images from {' and '.join(names)}; cached in {cache}")
    return images, labels, sources


@dataclasses.dataclass
class Birds:
    """The lesson 5 data: uint8 [N, 32, 32, 3] images and labels (1 = bird) per split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    valid_images: np.ndarray
    valid_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    real: bool  # True for CIFAR-10 (+ CUB) photos, False for the toy_birds stand-in
    sources: dict  # images per source before any sampling, e.g. {"cifar10": 60000}
    test_sources: np.ndarray  # the source of each held-out image ("cifar10", "cub200", ...)
    class_names: tuple = CLASS_NAMES

    @property
    def class_counts(self):
        """{"train" | "valid" | "test": {"not bird": n, "bird": n}}."""
        return {split: {name: int(np.sum(getattr(self, f"{split}_labels") == index))
                        for index, name in enumerate(self.class_names)}
                for split in ("train", "valid", "test")}


def _stratified_split(labels, fraction, rng):
    """Indices `(taken, rest)`: `fraction` of each class taken at random."""
    groups = [rng.permutation(np.flatnonzero(labels == value)) for value in np.unique(labels)]
    halves = [np.split(members, [round(len(members) * fraction)]) for members in groups]
    return tuple(np.sort(np.concatenate(side)) for side in zip(*halves))


def bird_dataset(data_dir=paths.DATA, limit=None, seed=0, standin_count=3000, progress=True):
    """The bird / not-bird images, split into train, valid and held-out test (lesson 5).

    The test split keeps the original's share (15,000 of 71,788); both splits keep each class's share.

    Args:
        data_dir: the folder holding `cifar10/` (and `cub200/`) downloads.
        limit: use only this many images, drawn at random (sample mode); None: all.
        seed: the seed of the sampling and the split.
        standin_count: toy_birds images to draw when CIFAR-10 is missing.

    Raises:
        ValueError: too few images for the training, validation and held-out images to hold a bird and a
            non-bird each.
    """
    if limit is not None and limit < 10:
        raise ValueError(f"limit={limit} is too few images to split three ways: use at least 27 (66 with CIFAR-10 "
                         "alone, whose birds are rarer), or None for all of them.")
    assembled = assemble(data_dir, progress)
    real = assembled is not None
    if not real:
        folder = paths.DATA / f"toy_birds_{standin_count}"  # drawn with seed 0: `seed` picks the split
        print(f"No CIFAR-10 in {paths.resolve(data_dir) / 'cifar10'}: using the toy_birds stand-in, "
              f"{standin_count} cartoon birds and not-birds drawn by the kit.\nResults on it say "
              "nothing about real photos. For the real data:\n"
              "    python -m utils.data download cifar10    # 170 MB\n"
              "    python -m utils.data download cub200     # 1.1 GB")
        synth.generate("toy_birds", folder, count=standin_count, seed=0, progress=progress)
        with np.load(folder / "birds.npz") as arrays:
            images, labels = arrays["x"], arrays["y"].astype(np.int32)
        sources = {"toy_birds": len(labels)}
    else:
        images, labels, sources = assembled
        if "cub200" not in sources:
            print("CUB-200 is not downloaded: birds come from CIFAR-10 alone (6,000 of 60,000 "
                  "images). For the original's extra 11,788 bird photos:\n"
                  "    python -m utils.data download cub200")
    origin = np.repeat(list(sources), list(sources.values()))  # sources are stacked in this order
    rng = np.random.default_rng(seed)
    if limit is not None and limit < len(labels):
        chosen, _ = _stratified_split(labels, limit / len(labels), rng)
        images, labels, origin = images[chosen], labels[chosen], origin[chosen]
    test, rest = _stratified_split(labels, HELD_OUT / FULL_SIZE, rng)
    valid, train = _stratified_split(labels[rest], VALID_FRACTION, rng)
    valid, train = rest[valid], rest[train]
    for split, indices in (("training", train), ("validation", valid), ("held-out", test)):
        if len(np.unique(labels[indices])) < 2:  # no bird, or no non-bird: its precision and recall mean nothing
            raise ValueError(f"{len(labels)} images leave the {split} images without a bird or without a non-bird: "
                             "ask for more (at least 27, or 66 with CIFAR-10 alone, whose birds are rarer). CIFAR-10 "
                             "has 6,000 birds among its 60,000 images: if these are all of a download, it is "
                             "incomplete; download it again into a new folder.")
    return Birds(images[train], labels[train], images[valid], labels[valid], images[test], labels[test], real,
                 sources, origin[test])
