"""Datasets on disk: download them, and organize photos into train, validation and test folders.

Lessons 3, 4 and 6 call `pets`; from a terminal: `python -m utils.data {download,organize,check,synth} ...`.
"""

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import random
import shutil
import sys
import unicodedata

import tqdm

from utils import cli, downloads, images, layouts, paths, safely, synth

SPLITS = ("train", "valid", "test", "sample/train", "sample/valid", "sample/test")
LOOKED_FOR = "Looked for: " + "; ".join(layouts.LOOKED_FOR) + "."  # what `pets` and `organize` recognize
NOTHING_FOUND = f"{LOOKED_FOR} To download real photos (no account needed): `python -m utils.data download dogscats`."
EXPECTED = (ValueError, OSError, downloads.DownloadError)  # `main`'s errors that say what to do: one line through cli


@dataclasses.dataclass
class Layout:
    """An organized dataset: `train/`, `valid/`, `test/` and `sample/` folders of class folders."""

    root: pathlib.Path
    kind: str  # what the photos came as: a `layouts.Found` kind or "toy_pets stand-in"
    real: bool  # True for photos, False for the drawn stand-in
    dataset: str  # "dogscats" for photos of cats and dogs, "toy_pets stand-in" for the cartoons, else the folder's name
    counts: dict  # {split: {class: images}}
    skipped: dict = dataclasses.field(default_factory=dict)  # {file: reason} for the files left out
    converted: int = 0  # how many images in odd modes were written as RGB JPEGs
    created: int = 0  # files this call wrote (0 when the layout was already there)

    def folder(self, sample):
        """The folder holding `train/`, `valid/` and `test/`: the sample split's or the full one."""
        return self.root / "sample" if sample else self.root

    @property
    def unlabelled(self):
        """The folder of unlabelled photos (Kaggle's test set), or None."""
        return self.root / "unlabelled" if (self.root / "unlabelled").is_dir() else None


def organize(source, layouts_dir=None, valid_fraction=0.15, test_fraction=0.15, sample_train=400,
             sample_valid=100, sample_test=100, seed=0, quiet=False):
    """Lays photos out in train, validation and test folders, without touching the source; returns a `Layout`.

    Files are hard links (or copies), odd images are written as RGB JPEGs, and bad ones are left out and listed.

    Args:
        source: photos in any layout `layouts.find` recognizes.
        layouts_dir: where layouts are kept (default `data/layouts/`); the same settings and files reuse one.
        valid_fraction, test_fraction: what each class holds out, unless the source brings that split.
        sample_train, sample_valid, sample_test: images per class in each split of `sample/`; `seed` picks the split.
    """
    source = paths.resolve(source)
    if not (valid_fraction > 0 and test_fraction > 0 and valid_fraction + test_fraction < 1):
        raise ValueError(f"valid_fraction={valid_fraction}, test_fraction={test_fraction}: each must be more than 0, "
                         "and both less than 1 in all, to leave photos to train on.")
    if min(sample_train, sample_valid, sample_test) < 1:
        raise ValueError("sample_train, sample_valid and sample_test count images per class: use 1 or more.")
    found = layouts.find(source)
    if found is None:
        raise NothingFound(f"no photos found in {source}. {NOTHING_FOUND}")
    root = found.root
    dataset = "dogscats" if set(found.classes) == {"cats", "dogs"} else root.name
    dataset = "toy_pets stand-in" if found.drawn else dataset  # the kit's cartoons, or a layout organized from them
    if found.kind == "organized":  # used as it is, and counted as it is now
        counts = {split: {p.name: len(layouts.image_files(p)) for p in sorted((root / split).iterdir()) if p.is_dir()}
                  for split in SPLITS if (root / split).is_dir()}
        layout = Layout(root, "organized", not found.drawn, dataset, counts)
        if not quiet:
            _print_summary(layout, found.description)
        return layout
    layouts_dir = paths.resolve(layouts_dir) if layouts_dir else paths.DATA / "layouts"
    if layouts_dir.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"the layouts folder {layouts_dir} is inside the photos' folder {root}: the next "
                         "run would take the layouts for photos. Give the photos a folder of their own (such as "
                         "data/dogscats, a lesson's DATA_DIR), or pass --layouts a folder outside them.")
    files = found.all_files()
    report = images.check_files(files, cache=layouts_dir / ".checks" / f"{_digest(str(root))}.json")
    bad = {pathlib.Path(path): reason for path, reason in report.bad.items()} | found.duplicates
    odd = {pathlib.Path(path) for path in report.odd}
    settings = {"seed": seed, "valid_fraction": valid_fraction, "test_fraction": test_fraction,
                "sample_train": sample_train, "sample_valid": sample_valid, "sample_test": sample_test}
    plan, counts = _plan(found, bad, odd, settings)
    stamps = sorted((str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files)
    # 2: the second way of converting odd photos (turned upright first): an older layout is rebuilt beside it
    key = _digest(json.dumps([2, str(root), settings, {t: str(p) for t, p in plan.items()}, stamps]))
    dest = layouts_dir / root.name / f"seed{seed}-{key}"
    skipped = {path.relative_to(root).as_posix(): reason for path, reason in sorted(bad.items())}
    kind = "toy_pets stand-in" if found.drawn else found.kind
    layout = Layout(dest, kind, not found.drawn, dataset, counts, skipped, len(odd))
    building = dest.with_name(f".building-{dest.name}")  # renamed to `dest` once complete: never half a layout
    complete = (dest / layouts.LAYOUT_FILE).is_file()  # renamed into place whole: a shared read-only copy needs no lock
    with contextlib.nullcontext() if complete else safely.locked(dest, "organizing these photos"):
        if not (dest / layouts.LAYOUT_FILE).is_file():  # a second terminal waited for the first, and reuses its layout
            if building.exists():
                shutil.rmtree(building)  # the kit's own unfinished work from an interrupted run (Ctrl-C, a full disk)
            for target, path in tqdm.tqdm(plan.items(), desc="organizing", disable=len(plan) < 500):
                (building / target).parent.mkdir(parents=True, exist_ok=True)
                if path in odd:
                    images.to_rgb_jpeg(path, building / target)
                    continue
                real = os.path.realpath(path)  # a symlink is linked as the file it points to, never as a link
                try:
                    os.link(real, building / target)
                except FileExistsError:  # never copy into a target: it may be a link to a source photo
                    raise
                except OSError:  # another filesystem, or linking not allowed: copy
                    shutil.copy2(real, building / target)
            record = {"format": layouts.LAYOUT_FORMAT, "kind": found.kind, "source": str(root), "dataset": dataset,
                      "settings": settings, "counts": counts, "skipped": skipped,
                      "converted": sorted(path.relative_to(root).as_posix() for path in odd),
                      "files": {target: path.relative_to(root).as_posix() for target, path in plan.items()}}
            (building / layouts.LAYOUT_FILE).write_text(json.dumps(record, indent=1))
            building.rename(dest)
            layout.created = len(plan)
    if not quiet:
        _print_summary(layout, f"{found.description}, in {root}")
    return layout


class NothingFound(FileNotFoundError):
    """`organize` found no photos in any layout it knows."""


def pets(data_dir="data/dogscats", standin_count=1000, seed=0, **settings):
    """Organizes dogs-vs-cats photos found in any layout, or draws a stand-in (lessons 3, 4, 6); returns a `Layout`.

    Args:
        data_dir: the photos (a lesson's DATA_DIR). A folder in the kit's `data/` that is not there yet (the
            default, before a download) counts as one with no image; elsewhere it must exist (a typo fails).
        standin_count: cartoons drawn into `data/toy_pets_<count>/` when `data_dir` holds no image at all; images in
            no labelled layout are refused, not replaced by cartoons.
        seed, settings: passed to `organize`.
    """
    data_dir = paths.resolve(data_dir)
    if not any(data_dir.resolve().is_relative_to(folder.resolve()) for folder in (paths.DATA, paths.ROOT / "data")):
        layouts.check_folder(data_dir)  # a mistyped DATA_DIR stops the lesson: it never trains on cartoons
    with contextlib.suppress(NothingFound):
        if data_dir.exists():  # else a folder in data/ not downloaded yet: no image at all
            return organize(data_dir, seed=seed, **settings)  # says which layout it found
    if strays := layouts.image_files(data_dir):  # photos in no labelled layout: say so, never train on cartoons
        raise ValueError(f"{data_dir} holds {len(strays)} images (for example {strays[0].relative_to(data_dir)}), "
                         f"but not in a layout that says which is a cat and which a dog. {LOOKED_FOR} Move them "
                         "into one subfolder per class (cats/ and dogs/), then run this again.")
    print(f"No photos found in {data_dir}. {NOTHING_FOUND}\nUsing the toy_pets stand-in instead: {standin_count} "
          f"cartoon cats and dogs (+{standin_count // 10} unlabelled) drawn by the kit: not a test of real photos.")
    standin = paths.DATA / f"toy_pets_{standin_count}"
    synth.generate("toy_pets", standin, count=standin_count, seed=0)  # drawn once; SEED picks the split
    return organize(standin, seed=seed, **settings)  # which knows the stand-in by synth's marker


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _plan(found, bad, odd, settings):
    """`{target path in the layout: source path}` and `{split: {class: images}}`, the same for the same input."""
    plan, counts = {}, {split: {} for split in (*SPLITS, "unlabelled")}
    taken = set()  # targets as a Mac's or Windows' disk compares names: IMG_0.JPG is img_0.jpg, é is e + ´

    def usable(groups, class_name):
        return [path for path in (groups or {}).get(class_name, []) if path not in bad]

    def add(folder, paths_):
        for path in paths_:
            parts = path.relative_to(found.root).parts
            for count in range(1, len(parts) + 1):  # nested files that share a name: a__0.png
                name = "__".join(parts[-count:])
                if path in odd and not name.lower().endswith((".jpg", ".jpeg")):
                    name = name.rsplit(".", 1)[0] + ".jpg"  # written as an RGB JPEG
                if unicodedata.normalize("NFC", f"{folder}/{name}").casefold() not in taken:
                    break
            else:  # paths that only case tells apart (cats/A.jpg, cats/a.jpg on a Linux disk): numbered
                name = f"{len(taken)}__{name}"
            taken.add(unicodedata.normalize("NFC", f"{folder}/{name}").casefold())
            plan[f"{folder}/{name}"] = path

    sampled = {p.name for split in (found.sample or {}).values() for ps in split.values() for p in ps if p not in bad}
    for class_name in sorted(found.classes):
        pool = sorted(usable(found.classes, class_name))
        random.Random(f"{settings['seed']}-{class_name}").shuffle(pool)  # the same order for the same seed
        pool.sort(key=lambda path: path.name in sampled)  # photos the source's sample/ holds go last
        given_valid, given_test = usable(found.valid, class_name), usable(found.test, class_name)
        total = len(pool) + len(given_valid) + len(given_test)
        test_count = 0 if given_test else max(1, round(total * settings["test_fraction"]))
        valid_count = 0 if given_valid else max(1, round(total * settings["valid_fraction"]))
        if len(pool) < test_count + valid_count + 1:
            raise ValueError(f"class {class_name!r} has only {len(pool)} usable images in {found.root}: each class "
                             f"needs at least {test_count + valid_count + 1} (one for training and one for each "
                             "held-out split). Add photos to it, or move its folder out.")
        splits = {"test": given_test or pool[:test_count],
                  "valid": given_valid or pool[test_count:test_count + valid_count],
                  "train": pool[test_count + valid_count:]}
        for split, members in splits.items():
            add(f"{split}/{class_name}", members)
        for split in ("train", "valid", "test"):  # the source's own sample/, else the first of each split
            given = usable((found.sample or {}).get(split), class_name)
            add(f"sample/{split}/{class_name}", given or splits[split][:settings[f"sample_{split}"]])
    add("unlabelled", [path for path in found.unlabelled if path not in bad])
    for folder in (target.rsplit("/", 1)[0] for target in plan):  # train/cats, sample/train/cats or unlabelled
        split, class_name = folder.rsplit("/", 1) if "/" in folder else (folder, "unknown")
        counts[split][class_name] = counts[split].get(class_name, 0) + 1
    return plan, counts


def _print_summary(layout, description):
    counts, skipped, converted = layout.counts, layout.skipped, layout.converted
    class_names = sorted({name for split, group in counts.items() for name in group if split != "unlabelled"})
    print(f"Photos: {description}.")
    width = max(10, *(len(name) + 2 for name in class_names))
    for split in ("split", *SPLITS):  # a header, then one row per split
        row = class_names if split == "split" else [counts.get(split, {}).get(name, 0) for name in class_names]
        print(f"{split:<14}" + "".join(f"{value:>{width}}" for value in row))
    if counts.get("unlabelled"):
        print(f"{'unlabelled':<14}{counts['unlabelled']['unknown']:>{width}}")
    if (test := counts.get("test", {})) and max(test.values()) > 1.5 * min(test.values()):  # 50% is no guess then
        print(f"Unbalanced classes: always answering {max(test, key=test.get)!r} is right on "
              f"{max(test.values()) / sum(test.values()):.0%} of the test photos; judge accuracy against that.")
    for path, reason in list(skipped.items())[:10]:
        print(f"left out {path}: {reason}")
    if len(skipped) > 10:
        print(f"... and {len(skipped) - 10} more files left out (all listed in {layout.root / layouts.LAYOUT_FILE}).")
    if converted:
        print(f"{converted} images in odd modes (grayscale, CMYK, transparency, 16-bit) were written as RGB JPEGs.")
    print(f"Organized into {layout.root} ({layout.created} files; the source is unchanged)." if layout.created
          else f"Using {layout.root} (already organized with these settings).")


def main(argv=None):
    """The command line: `python -m utils.data {download,organize,check,synth} ...`."""
    parser = argparse.ArgumentParser(prog="python -m utils.data", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("download", help="fetch a dataset into data/NAME/")
    command.add_argument("name", choices=sorted(downloads.DATASETS))
    command.add_argument("--data-dir", type=cli.folder, default=str(paths.DATA), help="default data/")
    command.add_argument("--source", help="where from, for datasets with several (dogscats: microsoft, kaggle)")
    command = commands.add_parser("organize", help="lay photos out in train/valid/test folders")
    command.add_argument("source", type=cli.folder)
    command.add_argument("--layouts", type=cli.folder, help="where layouts are kept (default data/layouts)")
    command.add_argument("--valid-fraction", type=float, default=0.15, help="default 0.15")
    command.add_argument("--test-fraction", type=float, default=0.15, help="default 0.15")
    for split, default in (("train", 400), ("valid", 100), ("test", 100)):
        command.add_argument(f"--sample-{split}", type=int, default=default, help=f"per class (default {default})")
    command.add_argument("--seed", type=int, default=0, help="default 0")
    command = commands.add_parser("check", help="list images that are unreadable or odd")
    command.add_argument("folder", type=cli.folder)
    command = commands.add_parser("synth", help="draw a stand-in (toy_pets, toy_birds)")
    command.add_argument("name", choices=synth.DATASETS)
    command.add_argument("dest", type=cli.folder, help="folder to write into (created if missing)")
    command.add_argument("--count", type=int, default=1500, help="number of labeled images (default 1500)")
    command.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "download":
        downloads.download(args.name, args.data_dir, source=args.source)
    elif args.command == "organize":
        organize(args.source, args.layouts, args.valid_fraction, args.test_fraction, args.sample_train,
                 args.sample_valid, args.sample_test, args.seed)
    elif args.command == "check":
        layouts.check_folder(pathlib.Path(args.folder))  # the files organize would read: not hidden ones
        if not (files := layouts.image_files(args.folder)):  # "0 images checked: 0 bad" would read as all good
            raise ValueError(f"no images in {args.folder} or its subfolders ({layouts.READS}; hidden, linked, tmp/ "
                             "and models/ folders are not looked in): check the path, or move the photos out of those.")
        print(images.check_files(files))
    else:
        counts = synth.generate(args.name, args.dest, count=args.count, seed=args.seed)
        print(f"{args.name} in {args.dest}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, expected=EXPECTED,
                     interrupted="nothing you downloaded or organized was changed; run the same "
                                 "command again: a download resumes, a layout or a stand-in is made afresh"))
