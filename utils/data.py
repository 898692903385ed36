"""Datasets on disk: download, check and organize them into folders (lesson 3).

`organize` turns Kaggle's flat `cat.0.jpg, dog.0.jpg, ...` (or any folder of
class subfolders) into `train/`, `valid/`, `sample/` and `test/unknown/`
folders without touching the source, leaving out the files that
`images.check_images` finds would crash training. `pets` is what lessons 3 and
4 call: the real photos when they are there, else a drawn stand-in. The
registry and downloads live in `utils.downloads`.

From a terminal::

    python -m utils.data download dogscats
    python -m utils.data organize data/dogscats data/dogscats
    python -m utils.data check data/dogscats/train
"""

import argparse
import dataclasses
import json
import os
import pathlib
import random
import shutil
import sys

import tqdm

from utils import downloads, images, paths

MANIFEST = "layout.json"
SPLITS = ("train", "valid", "sample/train", "sample/valid", "test")


def download(name, data_dir=paths.DATA):
    """Fetches a dataset into `data/NAME/`; see `downloads.download`."""
    return downloads.download(name, data_dir)


def load_mnist(data_dir=paths.DATA):
    """Loads `data/mnist/mnist.npz`; see `downloads.load_mnist` (lesson 2)."""
    return downloads.load_mnist(data_dir)


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
        report = images.check_files([source / name for name in found])
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


@dataclasses.dataclass
class Pets:
    """Where `pets` put the dogs-vs-cats layout.

    Attributes:
        root: the organized folder: `train/`, `valid/`, `sample/`, `test/unknown/`.
        real: True for Kaggle's photos, False for the toy_pets stand-in.
        counts: `{split: {class: images}}` from `organize`.
    """

    root: pathlib.Path
    real: bool
    counts: dict


def pets(data_dir="data/dogscats", standin_count=1000, seed=0, sample_train=400, sample_valid=100):
    """Finds Kaggle's dogs-vs-cats photos and organizes them, or draws a stand-in (lessons 3, 4).

    Args:
        data_dir: the download folder (`train/` of `cat.N.jpg`, `dog.N.jpg`,
            optional `test/`), organized in place.
        standin_count: images to draw when `data_dir` has no photos; the
            stand-in goes to `data/toy_pets_<count>/`, never into `data_dir`.
        seed: the split's seed (and the stand-in's).
        sample_train, sample_valid: images per class in `sample/train` and
            `sample/valid`: enough for a network to learn something in a
            few minutes on a laptop.

    Returns:
        A `Pets`.
    """
    data_dir = paths.resolve(data_dir)
    flat = data_dir / "train"
    if flat.is_dir() and any(images.is_image_name(p) for p in flat.iterdir()):
        layout = organize(data_dir, data_dir, seed=seed, sample_train=sample_train,
                          sample_valid=sample_valid)
        return Pets(data_dir, True, layout["counts"])
    standin = paths.DATA / f"toy_pets_{standin_count}"
    print(f"No photos in {data_dir}: using the toy_pets stand-in, {standin_count} cartoon cats and\n"
          "dogs drawn by the kit. Results on it say nothing about real photos. For the real data:\n"
          "    python -m utils.data download dogscats")
    from utils import synth

    synth.generate("toy_pets", standin, count=standin_count, seed=seed)  # no-op once drawn
    layout = organize(standin, standin, seed=seed, sample_train=sample_train,
                      sample_valid=sample_valid)
    return Pets(standin, False, layout["counts"])


def _relative(path, root):
    return pathlib.Path(path).relative_to(root).as_posix()


def _flat_images(folder):
    return sorted(p for p in folder.iterdir() if images.is_image_name(p)) if folder.is_dir() else []


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
        files = sorted(p for p in folder.rglob("*") if images.is_image_name(p))
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
        images.to_rgb_jpeg(source, target)
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
            report = images.check_images(args.folder)
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
