"""Datasets on disk: download, check and organize them into folders (lesson 3).

`organize` turns Kaggle's flat `cat.0.jpg, dog.0.jpg, ...` (or any folder of
class subfolders) into `train/`, `valid/`, `sample/` and `test/unknown/`
folders without touching the source; `check_images` finds the files that would
crash training. The registry and downloads live in `utils.downloads`.

From a terminal::

    python -m utils.data download dogscats
    python -m utils.data organize data/dogscats data/dogscats
    python -m utils.data check data/dogscats/train
"""

import argparse
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import random
import shutil
import sys

import numpy as np
import PIL.Image
import tqdm

from utils import downloads, paths

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TF_FORMATS = ("JPEG", "PNG", "GIF", "BMP")  # what tf.io.decode_image reads
MANIFEST = "layout.json"
SPLITS = ("train", "valid", "sample/train", "sample/valid", "test")


def download(name, data_dir=paths.DATA):
    """Fetches a dataset into `data/NAME/`; see `downloads.download`."""
    return downloads.download(name, data_dir)


def load_mnist(data_dir=paths.DATA):
    """Loads `data/mnist/mnist.npz`; see `downloads.load_mnist` (lesson 2)."""
    return downloads.load_mnist(data_dir)


@dataclasses.dataclass
class ImageReport:
    """What `check_images` found.

    Attributes:
        checked: how many files with an image extension were read.
        bad: `{path: reason}` for files that cannot be decoded.
        odd: `{path: mode}` for decodable images that are not 8-bit RGB
            (grayscale, CMYK, transparency, 16-bit) or not in a format
            TensorFlow decodes.
    """

    checked: int = 0
    bad: dict = dataclasses.field(default_factory=dict)
    odd: dict = dataclasses.field(default_factory=dict)


def inspect_image(path):
    """Decodes one file fully with PIL.

    Returns:
        `("ok", "RGB")`, `("odd", mode)` or `("bad", reason)`.
    """
    path = pathlib.Path(path)
    if path.stat().st_size == 0:
        return "bad", "empty file (0 bytes)"
    try:
        with PIL.Image.open(path) as image:
            image.load()
            mode, image_format = image.mode, image.format
    except PIL.UnidentifiedImageError:
        head = path.read_bytes()[:512]
        if all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in head):
            return "bad", "text file, not an image"
        return "bad", "not an image PIL can read"
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as error:
        if "truncated" in str(error):
            return "bad", f"truncated image ({error})"
        return "bad", f"cannot be decoded ({error})"
    if image_format not in TF_FORMATS:
        return "odd", f"{mode} {image_format}"
    return ("ok", mode) if mode == "RGB" else ("odd", mode)


def check_images(folder):
    """Finds the image files in `folder` (and below) that are bad or odd.

    Args:
        folder: a folder of images, searched recursively; only files with an
            image extension (.jpg, .jpeg, .png, .bmp, .gif) are read.

    Returns:
        An `ImageReport`.
    """
    folder = paths.resolve(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder of images to check.")
    return _check_files(sorted(p for p in folder.rglob("*") if _is_image_name(p)))


def _check_files(files):
    """Runs `inspect_image` on `files` in parallel (PIL decodes outside the GIL)."""
    report = ImageReport(checked=len(files))
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        results = pool.map(inspect_image, files)
        for path, (status, detail) in zip(files, tqdm.tqdm(
                results, total=len(files), desc="checking images", disable=len(files) < 500)):
            if status != "ok":
                getattr(report, status)[str(path)] = detail
    return report


def to_rgb_jpeg(source, target):
    """Writes `source` as an 8-bit RGB JPEG: transparency over white, 16 bits scaled to 8."""
    with PIL.Image.open(source) as image:
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            grey = np.asarray(image).astype(np.float64) / 257.0
            image = PIL.Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            background = PIL.Image.new("RGBA", image.size, "white")
            image = PIL.Image.alpha_composite(background, image)
        partial = target.with_name(target.name + ".part")
        image.convert("RGB").save(partial, "JPEG", quality=95)
    partial.replace(target)


def organize(source, dest, valid_fraction=0.2, sample_train=100, sample_valid=50, seed=0):
    """Lays images out in `DEST/{train,valid}/CLASS/`, `sample/...` and `test/unknown/`.

    The source is never changed: files are hard-linked (copied across
    filesystems). Bad files are left out and listed; odd ones are written as
    RGB JPEGs. `DEST/layout.json` records the settings and files, so a second
    call with the same settings does nothing, and a call with other settings
    refuses instead of mixing two layouts.

    Args:
        source: Kaggle's flat folder (`cat.0.jpg`, ...; class "cats"), a
            folder of class subfolders, or the download root holding such a
            `train/` and an unlabelled flat `test/`.
        dest: where the layout goes; may be the download root itself.
        valid_fraction: share of each class held out for validation.
        sample_train: images per class in `sample/train` (from `train`).
        sample_valid: images per class in `sample/valid` (from `valid`).
        seed: the shuffle seed; the same seed gives the same split.

    Returns:
        A dict: "counts" `{split: {class: n}}`, "skipped" `{file: reason}`,
        "converted" (how many odd files were converted), "created" (files
        written by this call).
    """
    source, dest = paths.resolve(source), paths.resolve(dest)
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction={valid_fraction}: use a number between 0 and 1.")
    if min(sample_train, sample_valid) < 0:
        raise ValueError("sample_train and sample_valid count images per class: use 0 or more.")
    classes, test_files = _find_images(source, dest)
    settings = {"source": os.path.relpath(source, dest), "valid_fraction": valid_fraction,
                "seed": seed, "sample_train": sample_train, "sample_valid": sample_valid}
    found = sorted(_relative(path, source)
                   for items in [*classes.values(), test_files] for _, path in items)
    manifest = _read_manifest(dest, settings)
    if manifest and manifest["sources"] == found:
        bad, odd = manifest["skipped"], manifest["odd"]
    else:
        report = _check_files([source / name for name in found])
        bad = {_relative(p, source): reason for p, reason in report.bad.items()}
        odd = {_relative(p, source): mode for p, mode in report.odd.items()}
    plan = _plan(classes, test_files, source, bad, odd, settings)
    _refuse_unknown_files(dest, plan, manifest)
    record = {**settings, "sources": found, "skipped": bad, "odd": odd, "files": plan}
    if record != manifest:  # written before any file, so an interrupted run can finish
        dest.mkdir(parents=True, exist_ok=True)
        (dest / MANIFEST).write_text(json.dumps(record, indent=1))
    created = 0
    for target_name, source_name in tqdm.tqdm(plan.items(), desc="organizing", leave=False):
        target = dest / target_name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _place(source / source_name, target, source_name in odd)
            created += 1
    counts = {split: {} for split in SPLITS}
    for target_name in plan:
        split, class_name = target_name.rsplit("/", 2)[:2]
        counts[split][class_name] = counts[split].get(class_name, 0) + 1
    _print_summary(dest, counts, bad, len(odd), created)
    return {"counts": counts, "skipped": bad, "converted": len(odd), "created": created}


def _is_image_name(path):
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _relative(path, root):
    return pathlib.Path(path).relative_to(root).as_posix()


def _flat_images(folder):
    return sorted(p for p in folder.iterdir() if _is_image_name(p)) if folder.is_dir() else []


def _find_images(source, dest):
    """Returns `({class: [(name, path)]}, [(name, path)] unlabelled)` found under `source`."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source} not found: run `python -m utils.data download "
                                "dogscats` first, or pass the folder that holds your images.")
    labelled = source / "train" if (source / "train").is_dir() else source
    tests = [(p.name, p) for p in _flat_images(source / "test")] if labelled != source else []
    flat = _flat_images(labelled)
    if flat:  # Kaggle's names: the class is the part before the first dot
        classes = {}
        for path in flat:
            if path.name.count(".") < 2:
                raise ValueError(f"cannot tell the class of {path}: organize expects names like "
                                 "cat.0.jpg in a flat folder, or one subfolder per class.")
            prefix = path.name.split(".")[0]
            class_name = prefix if prefix.endswith("s") else prefix + "s"
            classes.setdefault(class_name, []).append((path.name, path))
        return classes, tests
    if dest == labelled or labelled in dest.parents or dest in labelled.parents:
        raise ValueError(f"{dest} overlaps the class folders in {labelled}: choose a DEST "
                         "outside the source (organize never writes into class folders).")
    classes = {}
    for folder in sorted(p for p in labelled.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.rglob("*") if _is_image_name(p))
        if files:  # files in nested folders get the folders in their name: a__b.jpg
            classes[folder.name] = [("__".join(p.relative_to(folder).parts), p) for p in files]
    if not classes:
        raise ValueError(f"no images found in {labelled}: run `python -m utils.data download "
                         "dogscats` first, or pass a folder of cat.N.jpg files or class folders.")
    return classes, tests


def _plan(classes, tests, source, bad, odd, settings):
    """Returns `{target name in DEST: source name}`, the same for the same settings."""
    plan = {}

    def add(split, class_name, items, all_names):
        for name, path in items:
            if _relative(path, source) in odd:  # written as JPEG: cat.5.png -> cat.5.jpg
                stem = name.rsplit(".", 1)[0]
                clash = stem + ".jpg" != name and stem + ".jpg" in all_names
                name = name + ".jpg" if clash else stem + ".jpg"
            plan[f"{split}/{class_name}/{name}"] = _relative(path, source)

    for class_name, items in sorted(classes.items()):
        names = {name for name, _ in items}
        kept = sorted(item for item in items if _relative(item[1], source) not in bad)
        random.Random(f"{settings['seed']}-{class_name}").shuffle(kept)
        valid_count = round(len(kept) * settings["valid_fraction"])
        valid, train = kept[:valid_count], kept[valid_count:]
        add("train", class_name, train, names)
        add("valid", class_name, valid, names)
        add("sample/train", class_name, train[: settings["sample_train"]], names)
        add("sample/valid", class_name, valid[: settings["sample_valid"]], names)
    add("test", "unknown", [item for item in tests if _relative(item[1], source) not in bad],
        {name for name, _ in tests})
    return plan


def _read_manifest(dest, settings):
    """Returns DEST's manifest, or None; refuses one made with other settings."""
    path = dest / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    different = {key: manifest.get(key) for key, value in settings.items()
                 if manifest.get(key) != value}
    if different:
        raise ValueError(
            f"{dest} already holds a layout made with other settings "
            f"({', '.join(f'{key}={value!r}' for key, value in different.items())}; see {path}). "
            "organize never overwrites: pass those settings to reuse it, or choose another DEST.")
    return manifest


def _refuse_unknown_files(dest, plan, manifest):
    """Refuses when DEST's class folders hold files this layout would not contain."""
    existing = set()
    for split in SPLITS:
        for folder in (p for p in (dest / split).glob("*") if p.is_dir()):
            existing.update(_relative(p, dest) for p in folder.rglob("*")
                            if p.is_file() and p.suffix != ".part")  # .part: interrupted
    unknown = sorted(existing - set(plan)) if manifest else sorted(existing)
    if unknown:
        raise ValueError(
            f"{dest} already holds {len(unknown)} files that this layout would not contain "
            f"(for example {', '.join(unknown[:3])}): the source changed or another tool made "
            "them. organize never overwrites or deletes: choose another DEST, or move those "
            "folders away first.")


def _place(source, target, convert):
    """Hard-links `source` to `target` (copies across filesystems), or converts it."""
    if convert:
        to_rgb_jpeg(source, target)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _print_summary(dest, counts, bad, converted, created):
    class_names = sorted({name for split in counts.values() for name in split})
    print(f"{'split':<14}" + "".join(f"{name:>10}" for name in class_names))
    for split, split_counts in counts.items():
        print(f"{split:<14}" + "".join(f"{split_counts.get(n, 0):>10}" for n in class_names))
    for path, reason in sorted(bad.items()):
        print(f"left out {path}: {reason}")
    if converted:
        print(f"{converted} images in odd modes (grayscale, CMYK, transparency, 16-bit) were "
              "written as RGB JPEGs.")
    if created:
        print(f"{created} files written into {dest} (the source is unchanged).")
    else:
        print(f"{dest} is already organized with these settings: nothing to do.")


def main(argv=None):
    """The command line: `python -m utils.data {download,organize,check,synth} ...`."""
    parser = argparse.ArgumentParser(prog="python -m utils.data", description=__doc__.split(
        "\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("download", help="fetch a dataset into data/NAME/")
    command.add_argument("name", choices=sorted(downloads.DATASETS))
    command.add_argument("--data-dir", default=str(paths.DATA))
    command = commands.add_parser("organize", help="lay images out in train/valid/sample/test")
    command.add_argument("source")
    command.add_argument("dest")
    command.add_argument("--valid-fraction", type=float, default=0.2)
    command.add_argument("--sample-train", type=int, default=100, help="per class")
    command.add_argument("--sample-valid", type=int, default=50, help="per class")
    command.add_argument("--seed", type=int, default=0)
    command = commands.add_parser("check", help="list images that are unreadable or odd")
    command.add_argument("folder")
    command = commands.add_parser("synth", help="draw a stand-in dataset (toy_pets, toy_birds)")
    command.add_argument("name")
    command.add_argument("dest")
    command.add_argument("--count", type=int, default=1000)
    command.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            download(args.name, args.data_dir)
        elif args.command == "organize":
            organize(args.source, args.dest, args.valid_fraction, args.sample_train,
                     args.sample_valid, args.seed)
        elif args.command == "check":
            report = check_images(args.folder)
            for path, reason in sorted(report.bad.items()):
                print(f"bad  {path}: {reason}")
            for path, mode in sorted(report.odd.items()):
                print(f"odd  {path}: mode {mode}")
            print(f"{report.checked} images checked: {len(report.bad)} bad, {len(report.odd)} "
                  "odd (organize leaves bad ones out and converts odd ones).")
        else:
            from utils import synth  # the stand-in datasets' own module

            synth.generate(args.name, args.dest, count=args.count, seed=args.seed)
    except (ValueError, FileNotFoundError, downloads.DownloadError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
