"""Which layout of labelled photos a folder holds (lessons 3, 4 and 6).

Photos of cats and dogs reach learners in several shapes. `find` looks at a
folder and says which one it holds, and where each photo belongs:

- "organized": a layout `data.organize` made (it has a `layout.json`);
- "kaggle": Kaggle's flat `train/cat.0.jpg, dog.0.jpg, ...`, with the
  unlabelled `test/` (or `test1/`) beside it;
- "fastai": fast.ai's 2017 `dogscats/`: `train/{cats,dogs}/`,
  `valid/{cats,dogs}/`, `sample/{train,valid}/...` and the unlabelled `test1/`;
- "petimages": Microsoft's `PetImages/Cat/`, `PetImages/Dog/` (the
  no-account download of the same Kaggle photos);
- "class folders": any folder with one subfolder of images per class.

Nothing here writes anything: `data.organize` turns what `find` found into
train, validation and test folders.
"""

import dataclasses
import json
import os
import pathlib
import re

from utils import images, synth

LAYOUT_FILE = "layout.json"
LAYOUT_FORMAT = 2
UNLABELLED_FOLDERS = ("test", "test1")
SKIPPED_FOLDERS = ("__MACOSX", "models", "tmp", ".ipynb_checkpoints")
NOT_CLASSES = ("test", "test1", "sample", "unlabelled", "valid")  # beside class folders
NOT_PHOTOS = ("Thumbs.db", "desktop.ini")  # what Windows leaves in a folder of photos: not worth a word
KAGGLE_NAME = re.compile(r"([^.]+)\.\d+[^.]*\.\w+")  # cat.0.jpg, cat.0 (1).jpg; a phone's PXL_1.MP.jpg is not
READS = "JPEG, PNG, GIF, BMP, WebP, TIFF or AVIF"
LOOKED_FOR = (
    "a layout made by `python -m utils.data organize` (layout.json)",
    "Kaggle's flat train/cat.0.jpg, train/dog.0.jpg, ...",
    "fast.ai's train/{cats,dogs}/ and valid/{cats,dogs}/",
    "Microsoft's PetImages/Cat/ and PetImages/Dog/",
    "one subfolder of images per class, for example cats/ and dogs/",
)
DESCRIPTIONS = {
    "organized": "a layout made by `data.organize`",
    "kaggle": "Kaggle's flat dogs-vs-cats download (train/cat.N.jpg)",
    "fastai": "the fast.ai layout (train/ and valid/ class folders; its valid/ and sample/ are kept)",
    "petimages": "Microsoft's PetImages/Cat and PetImages/Dog",
    "class folders": "one folder of images per class",
}


@dataclasses.dataclass
class Found:
    """What `find` recognized in a folder.

    Attributes:
        kind: "organized", "kaggle", "fastai", "petimages" or "class folders".
        root: the folder the photos were found in.
        classes: `{class name: [paths]}`, the labelled photos to split.
        valid: `{class name: [paths]}`, a validation split the layout brings
            (fast.ai's `valid/`), or None.
        test: `{class name: [paths]}`, a labelled test split it brings, or None.
        sample: `{"train": {...}, "valid": {...}}`, a small sample split it
            brings (fast.ai's `sample/`), or None.
        unlabelled: unlabelled photos (Kaggle's `test/`), possibly empty.
        drawn: True for the kit's drawn stand-in (synth's marker beside it), or a layout organized from it.
        duplicates: `{path: reason}` for second names of a photo already in `classes`, left out.
    """

    kind: str
    root: pathlib.Path
    classes: dict
    valid: dict | None = None
    test: dict | None = None
    sample: dict | None = None
    unlabelled: list = dataclasses.field(default_factory=list)
    drawn: bool = False
    duplicates: dict = dataclasses.field(default_factory=dict)

    @property
    def description(self):
        drawn = self.drawn and self.kind != "organized"
        return "the toy_pets stand-in, drawn in Kaggle's flat layout" if drawn else DESCRIPTIONS[self.kind]

    def all_files(self):
        """Every photo found, labelled or not."""
        groups = [self.classes, self.valid or {}, self.test or {},
                  *(self.sample or {}).values()]
        return [path for group in groups for paths in group.values() for path in paths] + list(
            self.unlabelled)


def class_name(name):
    """The class a folder or file prefix names: "Cat", "cat" and "cats" are all "cats"."""
    lowered = name.lower()
    for plural in ("cats", "dogs"):
        if lowered in (plural, plural[:-1]):
            return plural
    return name


def image_files(folder, recursive=True, others=None):
    """The image files in `folder` (and below, not following linked folders), sorted; the other files, but
    hidden ones and `NOT_PHOTOS`, are added to the list `others` if one is given."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return []
    if not recursive:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and images.is_image_name(p))
    found = []
    for parent, folders, files in os.walk(folder, onerror=_unreadable):  # followlinks=False: no loops
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in SKIPPED_FOLDERS)
        found += [pathlib.Path(parent, name) for name in files if not name.startswith(".") and name not in NOT_PHOTOS]
    if others is not None:
        others += sorted(p for p in found if not images.is_image_name(p))
    return sorted(p for p in found if images.is_image_name(p))


def _unreadable(error):
    """`os.walk` skips a folder it cannot list; a class silently missing is worse than a clear stop."""
    raise PermissionError(f"cannot list the folder {error.filename} ({error.strerror}), so its photos would be "
                          f"left out: fix its permissions (chmod -R u+rX {error.filename}) or move it out.")


def _class_folders(folder, left_out=None):
    """`{class: [images]}` for each subfolder of `folder` holding images, or {}; what is not used is added to
    the list `left_out`, a line each, if one is given."""
    classes, left_out = {}, [] if left_out is None else left_out
    if not folder.is_dir():
        return classes
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name in SKIPPED_FOLDERS or sub.name in NOT_CLASSES:
            continue
        if sub.is_symlink():  # a second name for a folder: its photos would count twice, or loop
            left_out.append(f"left out {sub}: a link to {os.path.realpath(sub)}, not a class of its own")
            continue
        others = []
        files = image_files(sub, others=others)
        if files:
            classes.setdefault(class_name(sub.name), []).extend(files)
        if others:  # an iPhone's HEIC photos, say: never dropped without a word
            left_out.append(f"left out {len(others)} files in {sub} that are not photos the kit reads ({READS}), "
                            f"such as {others[0].name}")
        elif not files:
            left_out.append(f"left out {sub}: no photos in it")
    return classes


def _kaggle_classes(folder):
    """`{class: [images]}` from flat names like cat.0.jpg, or {} when there are none."""
    classes = {}
    for path in image_files(folder, recursive=False):
        if match := KAGGLE_NAME.fullmatch(path.name):
            classes.setdefault(class_name(match[1]), []).append(path)
    return classes


def _unlabelled(folder):
    """The unlabelled photos in `test/` or `test1/`: flat, or in one folder named "unknown"."""
    for name in UNLABELLED_FOLDERS:
        if (folder / name).is_dir() and set(_class_folders(folder / name)) <= {"unknown"}:
            return image_files(folder / name)
    return []


def _organized(folder):
    manifest = folder / LAYOUT_FILE
    if not manifest.is_file():
        return None
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != LAYOUT_FORMAT:
        return None  # an older kit's layout: recognized by its folders below
    drawn = bool(record.get("source")) and (pathlib.Path(record["source"]) / synth.MARKER).is_file()
    return Found("organized", folder, _class_folders(folder / "train"), _class_folders(folder / "valid"),
                 _class_folders(folder / "test"), unlabelled=image_files(folder / "unlabelled"), drawn=drawn)


def _find_here(folder):
    """Recognizes `folder` itself, without looking into a wrapper folder."""
    organized = _organized(folder)
    if organized:
        return organized
    for train in (folder / "train", folder):
        kaggle = _kaggle_classes(train)
        if len(kaggle) >= 2:
            return Found("kaggle", folder, kaggle, unlabelled=_unlabelled(folder) if train != folder else [],
                         drawn=(folder / synth.MARKER).is_file())
    train, valid = _class_folders(folder / "train"), _class_folders(folder / "valid")
    if len(train) >= 2:
        test = _class_folders(folder / "test")
        sample = {split: _class_folders(folder / "sample" / split) for split in ("train", "valid")}
        return Found("fastai", folder, train, valid if set(valid) == set(train) else None,
                     test if set(test) == set(train) else None,
                     sample if set(sample["train"]) == set(train) else None, _unlabelled(folder))
    left_out = []
    classes = _class_folders(folder, left_out)
    if "PetImages" in classes and len(classes) > 1:
        raise ValueError(f"{folder} holds class folders and Microsoft's PetImages/ side by side, so PetImages "
                         "would become a class of its own: move PetImages/ (or the other folders) elsewhere.")
    if len(classes) >= 2:
        for line in left_out:
            print(line)
        return Found("petimages" if folder.name == "PetImages" else "class folders", folder, classes)
    return None


def check_folder(folder):
    """Refuses a `folder` that is not there, or is a file, before anything looks for photos in it."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file: pass a folder of photos (unpack an archive into a folder first).")
    if not folder.exists():
        raise FileNotFoundError(f"{folder} does not exist: check the path, or download photos first "
                                "(`python -m utils.data download dogscats` saves them in data/dogscats).")


def find(folder):
    """Recognizes the layout of labelled photos in `folder`.

    Looks at the folder itself, then inside `PetImages/` or a single
    subfolder that wraps everything (as many archives unpack).

    Args:
        folder: a folder of photos, in any layout listed in this module.

    Returns:
        A `Found`, or None when the folder holds no layout of labelled photos
        (see `LOOKED_FOR`).

    Raises:
        FileNotFoundError, ValueError: see `check_folder`; ValueError also for one class, or PetImages/ beside others.
    """
    folder = pathlib.Path(folder)
    check_folder(folder)
    found = _find_here(folder)
    if found is None:
        subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and p.name not in SKIPPED_FOLDERS]
        wrappers = [p for p in subfolders if p.name == "PetImages"] or (subfolders if len(subfolders) == 1 else [])
        found = next(filter(None, map(_find_here, wrappers)), None)
    if found is None:
        left_out = []
        classes = _class_folders(folder, left_out)
        if len(classes) == 1 and left_out:
            raise ValueError(f"{folder} holds photos of one class only, {next(iter(classes))} ({'; '.join(left_out)}): "
                             "a classifier needs photos of two classes or more, each class in a subfolder of its own.")
        for line in left_out:  # why nothing was found: linked or empty class folders
            print(line)
        return None
    return found if found.kind == "organized" else _once(found)


def _once(found):
    """Leaves out second names of a photo (a link, or a hard link, to one already found): else one photo
    could be split into training and test. They go to `found.duplicates`."""
    seen = {}
    for name, files in found.classes.items():
        kept = []
        for path in files:
            first = seen.setdefault((path.stat().st_dev, path.stat().st_ino), path)
            if first is path:
                kept.append(path)
            else:
                found.duplicates[path] = f"the same photo as {first.relative_to(found.root).as_posix()}"
        found.classes[name] = kept
    return found
