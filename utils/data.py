"""Datasets on disk: download them, and organize photos into train, validation and test folders.

`organize` takes photos in any layout `utils.layouts` recognizes (Kaggle's
flat download, fast.ai's `dogscats/`, Microsoft's `PetImages/`, class
folders) and lays them out as `train/`, `valid/` and `test/` folders of one
subfolder per class, plus a small `sample/` copy of the three, in a folder of
its own under `data/layouts/`. The source is never changed: files are hard
links (copies across filesystems). Each choice of settings gets its own
folder beside the others, so a learner never has to delete anything to try
another seed or sample size, or after adding photos. `pets` is what lessons 3
and 4 call: the real photos when there are any, else a drawn stand-in.

From a terminal::

    python -m utils.data download dogscats
    python -m utils.data organize data/dogscats
    python -m utils.data check data/dogscats
"""

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import random
import shutil
import sys

import tqdm

from utils import downloads, images, layouts, paths

SPLITS = ("train", "valid", "test", "sample/train", "sample/valid", "sample/test")
SAMPLE_SPLITS = {"sample/train": "train", "sample/valid": "valid", "sample/test": "test"}


@dataclasses.dataclass
class Layout:
    """An organized dataset: `train/`, `valid/`, `test/` and `sample/` folders of class folders.

    Attributes:
        root: the layout's folder.
        kind: what the photos came as: "kaggle", "fastai", "petimages",
            "class folders", "organized" (a layout passed as it is), or
            "toy_pets stand-in".
        real: True for photos, False for the drawn stand-in.
        dataset: "dogscats" for cats and dogs, else the source folder's name.
        counts: `{split: {class: images}}`.
        skipped: `{file: reason}` for the files left out.
        converted: how many images in odd modes were written as RGB JPEGs.
        created: files this call wrote (0 when the layout was already there).
    """

    root: pathlib.Path
    kind: str
    real: bool
    dataset: str
    counts: dict
    skipped: dict = dataclasses.field(default_factory=dict)
    converted: int = 0
    created: int = 0

    def folder(self, sample):
        """The folder holding `train/`, `valid/` and `test/`: the sample split's or the full one."""
        return self.root / "sample" if sample else self.root

    @property
    def unlabelled(self):
        """The folder of unlabelled photos (Kaggle's test set), or None."""
        folder = self.root / "unlabelled"
        return folder if folder.is_dir() else None


def download(name, data_dir=paths.DATA, source=None):
    """Fetches a dataset into `data/NAME/`; see `downloads.download`."""
    return downloads.download(name, data_dir, source=source)


def organize(source, layouts_dir=None, valid_fraction=0.15, test_fraction=0.15, sample_train=400,
             sample_valid=100, sample_test=100, seed=0, quiet=False):
    """Lays photos out in train, validation and test folders, without touching the source.

    Each class is shuffled (the same way for the same seed) and split; a
    validation or test split that the source brings (fast.ai's `valid/`) is
    kept, and so is its `sample/`. Files that would crash training are left
    out and listed; images in odd modes are written as RGB JPEGs. A layout
    made with the same settings from the same files is reused; other
    settings, or added or removed photos, give a new folder beside it.

    Args:
        source: a folder in any layout `layouts.find` recognizes.
        layouts_dir: where layouts are kept (default `data/layouts/`); this
            one goes to `layouts_dir/<source name>/seed<seed>-<key>/`.
        valid_fraction, test_fraction: share of each class held out for
            validation and for the final test.
        sample_train, sample_valid, sample_test: images per class in
            `sample/train`, `sample/valid` and `sample/test`, taken from the
            full splits.
        seed: the shuffle seed; the same seed gives the same split.
        quiet: print nothing.

    Returns:
        A `Layout`.
    """
    source = paths.resolve(source)
    for name, fraction in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 < fraction < 1:
            raise ValueError(f"{name}={fraction}: use a number between 0 and 1.")
    if valid_fraction + test_fraction >= 1:
        raise ValueError("valid_fraction + test_fraction must leave photos to train on: use less than 1 in all.")
    if min(sample_train, sample_valid, sample_test) < 1:
        raise ValueError("sample_train, sample_valid and sample_test count images per class: use 1 or more.")
    found = layouts.find(source)
    if found is None:
        raise NothingFound(f"no photos found in {source}. " + nothing_found_advice())
    dataset = _dataset_name(found)
    if found.kind == "organized":
        counts = _count(found.root)
        if not quiet:
            _print_summary(found.root, found.description, counts, {}, 0, 0)
        return Layout(found.root, "organized", True, dataset, counts)
    layouts_dir = paths.resolve(layouts_dir) if layouts_dir else paths.DATA / "layouts"
    if layouts_dir.resolve().is_relative_to(found.root.resolve()):
        raise ValueError(f"the layouts folder {layouts_dir} is inside the photos' folder {found.root}: the next "
                         "run would take the layouts for photos. Pass --layouts a folder outside it (the "
                         "default is data/layouts).")
    files = found.all_files()
    report = images.check_files(files, cache=layouts_dir / ".checks" / f"{_digest(str(found.root))}.json")
    bad = {pathlib.Path(path): reason for path, reason in report.bad.items()}
    odd = {pathlib.Path(path) for path in report.odd}
    settings = {"seed": seed, "valid_fraction": valid_fraction, "test_fraction": test_fraction,
                "sample_train": sample_train, "sample_valid": sample_valid, "sample_test": sample_test}
    plan = _plan(found, bad, odd, settings)
    stamps = sorted((str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files)
    key = _digest(json.dumps([str(found.root), settings, {t: str(p) for t, p in plan.items()}, stamps]))
    dest = layouts_dir / found.root.name / f"seed{seed}-{key}"
    counts = _plan_counts(plan)
    skipped = {_relative(path, found.root): reason for path, reason in sorted(bad.items())}
    created = 0
    with paths.locked(dest, "organizing these photos"):  # a second terminal waits, then reuses the layout
        if not (dest / layouts.LAYOUT_FILE).is_file():
            record = {"format": layouts.LAYOUT_FORMAT, "kind": found.kind, "source": str(found.root),
                      "dataset": dataset, "settings": settings, "counts": counts, "skipped": skipped,
                      "converted": sorted(_relative(path, found.root) for path in odd),
                      "files": {target: _relative(path, found.root) for target, path in plan.items()}}
            created = _build(dest, plan, odd, record)
    if not quiet:
        _print_summary(dest, f"{found.description}, in {found.root}", counts, skipped, len(odd), created)
    return Layout(dest, found.kind, True, dataset, counts, skipped, len(odd), created)


class NothingFound(FileNotFoundError):
    """`organize` found no photos in any layout it knows."""


def nothing_found_advice():
    """What `pets` and `organize` looked for, and how to get photos."""
    return ("Looked for: " + "; ".join(layouts.LOOKED_FOR) + ". To download real photos (no account "
            "needed): `python -m utils.data download dogscats`.")


def pets(data_dir="data/dogscats", standin_count=1000, seed=0, **settings):
    """Finds dogs-vs-cats photos in any layout and organizes them, or draws a stand-in (lessons 3, 4).

    Args:
        data_dir: the photos: a download folder or any layout `layouts.find`
            recognizes. Relative paths start at the kit's root folder.
        standin_count: images to draw when `data_dir` has no image at all;
            the stand-in goes to `data/toy_pets_<count>/`, never into `data_dir`.
        seed: the split's seed.
        **settings: split settings for `organize` (fractions, sample sizes).

    Returns:
        A `Layout`.

    Raises:
        ValueError: `data_dir` holds images, but in no layout that labels them.
    """
    data_dir = paths.resolve(data_dir)
    try:
        return organize(data_dir, seed=seed, **settings)  # says which layout it found
    except NothingFound:
        pass
    strays = layouts.image_files(data_dir)
    if strays:  # photos are there, but not labelled in a way the kit knows: say so, never train on cartoons
        raise ValueError(
            f"{data_dir} holds {len(strays)} images (for example {strays[0].relative_to(data_dir)}), but not "
            f"in a layout that says which is a cat and which a dog. " + nothing_found_advice().split(". To")[0]
            + ". Move them into one subfolder per class (cats/ and dogs/), then run this again.")
    print(f"No photos found in {data_dir}. " + nothing_found_advice() + "\n"
          f"Using the toy_pets stand-in instead: {standin_count} cartoon cats and dogs drawn by the kit. "
          "Results on it say nothing about real photos.")
    from utils import synth

    standin = paths.DATA / f"toy_pets_{standin_count}"
    synth.generate("toy_pets", standin, count=standin_count, seed=0)  # drawn once; SEED picks the split
    layout = organize(standin, seed=seed, **settings)
    return dataclasses.replace(layout, kind="toy_pets stand-in", real=False, dataset="toy_pets stand-in")


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _relative(path, root):
    return pathlib.Path(path).relative_to(root).as_posix()


def _dataset_name(found):
    return "dogscats" if {"cats", "dogs"} <= set(found.classes) else found.root.name


def _shuffled(paths_, seed, class_name, last=()):
    """`paths_` in a random order fixed by the seed; names in `last` go to the end."""
    paths_ = sorted(paths_)
    random.Random(f"{seed}-{class_name}").shuffle(paths_)
    return sorted(paths_, key=lambda path: path.name in last)


def _plan(found, bad, odd, settings):
    """Returns `{target path in the layout: source path}`, the same for the same input."""
    plan = {}

    def add(folder, paths_):
        for path in paths_:
            parts = path.relative_to(found.root).parts
            for count in range(1, len(parts) + 1):  # nested files that share a name: a__0.png
                name = "__".join(parts[-count:])
                if path in odd and not name.lower().endswith((".jpg", ".jpeg")):
                    name = name.rsplit(".", 1)[0] + ".jpg"  # written as an RGB JPEG
                if f"{folder}/{name}" not in plan:
                    break
            plan[f"{folder}/{name}"] = path

    seed = settings["seed"]
    sample = {split: {name: [p for p in paths_ if p not in bad] for name, paths_ in group.items()}
              for split, group in (found.sample or {}).items()}
    in_sample = {path.name for group in sample.values() for paths_ in group.values() for path in paths_}
    for class_name, paths_ in sorted(found.classes.items()):
        pool = _shuffled([p for p in paths_ if p not in bad], seed, class_name, last=in_sample)
        given_valid = [p for p in (found.valid or {}).get(class_name, []) if p not in bad]
        given_test = [p for p in (found.test or {}).get(class_name, []) if p not in bad]
        total = len(pool) + len(given_valid) + len(given_test)
        test_count = 0 if given_test else max(1, round(total * settings["test_fraction"]))
        valid_count = 0 if given_valid else max(1, round(total * settings["valid_fraction"]))
        if len(pool) < test_count + valid_count + 1:
            raise ValueError(
                f"class {class_name!r} has only {len(pool)} usable images in {found.root}: each class "
                f"needs at least {test_count + valid_count + 1} (one for training and one for each "
                "held-out split). Add photos to it, or move its folder out.")
        splits = {"test": given_test or pool[:test_count],
                  "valid": given_valid or pool[test_count:test_count + valid_count],
                  "train": pool[test_count + valid_count:]}
        for split, members in splits.items():
            add(f"{split}/{class_name}", members)
        for split, full in SAMPLE_SPLITS.items():
            given = sample.get(full, {}).get(class_name)
            add(f"{split}/{class_name}", given or splits[full][:settings[split.replace("/", "_")]])
    add("unlabelled", [p for p in found.unlabelled if p not in bad])
    return plan


def _plan_counts(plan):
    counts = {split: {} for split in SPLITS}
    counts["unlabelled"] = {}
    for target in plan:
        split, class_name = target.rsplit("/", 2)[:2] if not target.startswith("unlabelled/") else (
            "unlabelled", "unknown")
        counts[split][class_name] = counts[split].get(class_name, 0) + 1
    return counts


def _count(root):
    counts = {}
    for split in SPLITS:
        folder = root / split
        if folder.is_dir():
            counts[split] = {p.name: len(layouts.image_files(p)) for p in sorted(folder.iterdir()) if p.is_dir()}
    return counts


def _build(dest, plan, odd, record):
    """Writes the layout into a hidden folder beside `dest`, then renames it into place.

    An interrupted run (Ctrl-C, a full disk) leaves only that hidden
    folder, which the next run starts afresh; `dest` never holds half a layout.
    Called under `paths.locked(dest)`, so no other command is writing there.
    """
    building = dest.with_name(f".building-{dest.name}")
    if building.exists():
        shutil.rmtree(building)  # the kit's own unfinished work from an interrupted run
    building.mkdir(parents=True)
    for target, source in tqdm.tqdm(plan.items(), desc="organizing", leave=False, disable=len(plan) < 500):
        path = building / target
        path.parent.mkdir(parents=True, exist_ok=True)
        if source in odd:
            images.to_rgb_jpeg(source, path)
            continue
        source = os.path.realpath(source)  # a symlink is linked as the file it points to, never as a link
        try:
            os.link(source, path)
        except OSError:  # another filesystem, or linking not allowed: copy
            shutil.copy2(source, path)
    (building / layouts.LAYOUT_FILE).write_text(json.dumps(record, indent=1))
    building.rename(dest)
    return len(plan)


def _print_summary(dest, description, counts, skipped, converted, created):
    class_names = sorted({name for split, group in counts.items() for name in group if split != "unlabelled"})
    print(f"Photos: {description}.")
    print(f"{'split':<14}" + "".join(f"{name:>10}" for name in class_names))
    for split in SPLITS:
        group = counts.get(split, {})
        print(f"{split:<14}" + "".join(f"{group.get(n, 0):>10}" for n in class_names))
    if counts.get("unlabelled"):
        print(f"{'unlabelled':<14}{counts['unlabelled']['unknown']:>10}")
    for path, reason in list(skipped.items())[:10]:
        print(f"left out {path}: {reason}")
    if len(skipped) > 10:
        print(f"... and {len(skipped) - 10} more files left out (all listed in {dest / layouts.LAYOUT_FILE}).")
    if converted:
        print(f"{converted} images in odd modes (grayscale, CMYK, transparency, 16-bit) were written as RGB JPEGs.")
    if created:
        print(f"Organized into {dest} ({created} files; the source is unchanged).")
    else:
        print(f"Using {dest} (already organized with these settings).")


def main(argv=None):
    """The command line: `python -m utils.data {download,organize,check,synth} ...`."""
    parser = argparse.ArgumentParser(prog="python -m utils.data", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("download", help="fetch a dataset into data/NAME/")
    command.add_argument("name", choices=sorted(downloads.DATASETS))
    command.add_argument("--data-dir", default=str(paths.DATA))
    command.add_argument("--source", default=None,
                         help="where from, for datasets with several (dogscats: microsoft, kaggle)")
    command = commands.add_parser("organize", help="lay photos out in train/valid/test folders")
    command.add_argument("source")
    command.add_argument("--layouts", default=None, help="where layouts are kept (default data/layouts)")
    command.add_argument("--valid-fraction", type=float, default=0.15)
    command.add_argument("--test-fraction", type=float, default=0.15)
    command.add_argument("--sample-train", type=int, default=400, help="per class")
    command.add_argument("--sample-valid", type=int, default=100, help="per class")
    command.add_argument("--sample-test", type=int, default=100, help="per class")
    command.add_argument("--seed", type=int, default=0)
    command = commands.add_parser("check", help="list images that are unreadable or odd")
    command.add_argument("folder")
    command = commands.add_parser("synth", help="draw a stand-in dataset (toy_pets, toy_birds)")
    command.add_argument("name")
    command.add_argument("dest")
    command.add_argument("--count", type=int, default=1000)
    command.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path_arguments = ("layouts", "data_dir", "folder", "dest") + (("source",) if args.command == "organize" else ())
    for name in path_arguments:  # paths typed in a shell: from where it is
        value = getattr(args, name, None)
        if value is not None and not value.strip():
            parser.error(f"{'--' + name.replace('_', '-') if name in ('layouts', 'data_dir') else name} is "
                         "empty: give a folder")
        if value:
            setattr(args, name, os.path.abspath(os.path.expanduser(value)))
    try:
        if args.command == "download":
            download(args.name, args.data_dir, args.source)
        elif args.command == "organize":
            organize(args.source, args.layouts, args.valid_fraction, args.test_fraction, args.sample_train,
                     args.sample_valid, args.sample_test, args.seed)
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
    except (ValueError, OSError, downloads.DownloadError) as error:
        from utils import cli

        sys.exit(f"error: {cli.message(error)}")
    return 0


if __name__ == "__main__":
    from utils import cli

    sys.exit(cli.run(main, interrupted="nothing you downloaded or organized was changed; run the same "
                                       "command again: a download resumes, a layout is built afresh"))
