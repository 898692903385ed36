"""Every layout a learner may have is recognized and split as described, without touching it.

Each layout is built in a temporary folder from small drawn images: Kaggle's
flat download, fast.ai's dogscats/, Microsoft's PetImages/ (with the kinds of
broken files it holds), plain class folders, and layouts the kit organized.
"""

import hashlib
import json
import os
import pathlib
import re
import unicodedata

import keras
import numpy as np
import PIL.Image
import pytest

from utils import cli, data, layouts, paths, safely


def write_image(path, seed=0, size=(12, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng([seed, len(str(path))]).integers(0, 256, (*size, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path)


def snapshot(folder):
    """Every file under `folder`: relative path -> (md5, mtime, inode)."""
    return {p.relative_to(folder).as_posix(): (hashlib.md5(p.read_bytes()).hexdigest(),
                                               p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def names(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def kaggle(tmp_path):
    """Kaggle's layout: a flat train/ of cat.N.jpg (60) and dog.N.jpg (40), a flat test/ of N.jpg (10)."""
    root = tmp_path / "dogscats"
    for i in range(60):
        write_image(root / "train" / f"cat.{i}.jpg", i)
    for i in range(40):
        write_image(root / "train" / f"dog.{i}.jpg", i)
    for i in range(1, 11):
        write_image(root / "test" / f"{i}.jpg", i)
    (root / "sample_submission.csv").write_text("id,label\n")
    return root


@pytest.fixture
def fastai(tmp_path):
    """fast.ai's dogscats/: train/ and valid/ class folders, a tiny sample/, an unlabelled test1/."""
    root = tmp_path / "dogscats"
    for class_name, prefix in (("cats", "cat"), ("dogs", "dog")):
        for i in range(40):
            write_image(root / "train" / class_name / f"{prefix}.{i}.jpg", i)
        for i in range(100, 108):
            write_image(root / "valid" / class_name / f"{prefix}.{i}.jpg", i)
        for i in range(4):  # fast.ai's sample/ repeats photos of train/ and valid/
            write_image(root / "sample" / "train" / class_name / f"{prefix}.{i}.jpg", i)
        write_image(root / "sample" / "valid" / class_name / f"{prefix}.100.jpg", 100)
    for i in range(1, 6):
        write_image(root / "test1" / f"{i}.jpg", i)
    (root / "models").mkdir()
    return root


@pytest.fixture
def petimages(tmp_path):
    """The Microsoft download: PetImages/{Cat,Dog}/N.jpg, with empty, broken and odd files."""
    root = tmp_path / "dogscats"
    for class_name in ("Cat", "Dog"):
        for i in range(20):
            write_image(root / "PetImages" / class_name / f"{i}.jpg", i)
    (root / "PetImages" / "Cat" / "666.jpg").write_bytes(b"")  # as in the real archive
    (root / "PetImages" / "Dog" / "11702.jpg").write_bytes(b"")
    (root / "PetImages" / "Dog" / "2317.jpg").write_text("<html>not a photo</html>")
    (root / "PetImages" / "Cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    PIL.Image.new("CMYK", (20, 10), (0, 200, 200, 0)).save(root / "PetImages" / "Dog" / "50.jpg")
    PIL.Image.new("L", (10, 10), 77).save(root / "PetImages" / "Cat" / "51.jpg")
    (root / "kagglecatsanddogs_5340.zip").write_bytes(b"PK")
    (root / "readme[1].txt").write_text("Microsoft")
    return root


def test_kaggle_flat_layout_is_split_into_train_valid_test_and_sample(kaggle, tmp_path, capsys):
    before = snapshot(kaggle)
    layout = data.organize(kaggle, tmp_path / "layouts", valid_fraction=0.2, test_fraction=0.2,
                           sample_train=5, sample_valid=3, sample_test=2, seed=0)
    assert layout.kind == "kaggle" and layout.real and layout.dataset == "dogscats"
    assert layout.counts == {
        "train": {"cats": 36, "dogs": 24}, "valid": {"cats": 12, "dogs": 8},
        "test": {"cats": 12, "dogs": 8}, "sample/train": {"cats": 5, "dogs": 5},
        "sample/valid": {"cats": 3, "dogs": 3}, "sample/test": {"cats": 2, "dogs": 2},
        "unlabelled": {"unknown": 10}}
    assert "Kaggle's flat dogs-vs-cats download" in capsys.readouterr().out
    root = layout.root
    assert root.parent == tmp_path / "layouts" / "dogscats" and kaggle not in root.parents
    for class_name, prefix, total in (("cats", "cat", 60), ("dogs", "dog", 40)):
        splits = {split: set(names(root / split / class_name)) for split in ("train", "valid", "test")}
        assert not splits["train"] & splits["valid"] and not splits["train"] & splits["test"]
        assert not splits["valid"] & splits["test"]
        assert set().union(*splits.values()) == {f"{prefix}.{i}.jpg" for i in range(total)}
        for split in ("train", "valid", "test"):
            assert set(names(root / "sample" / split / class_name)) <= splits[split]
    assert names(root / "unlabelled") == sorted(f"{i}.jpg" for i in range(1, 11))
    linked = root / "train" / "cats" / names(root / "train" / "cats")[0]
    assert os.path.samefile(linked, kaggle / "train" / linked.name)  # a hard link, not a copy
    assert snapshot(kaggle) == before
    # Keras reads it as it is: one folder per class.
    train_ds = keras.utils.image_dataset_from_directory(root / "train", image_size=(12, 16), batch_size=8)
    assert train_ds.class_names == ["cats", "dogs"] and len(train_ds.file_paths) == 60


def test_the_same_settings_reuse_the_layout_and_other_settings_sit_beside_it(kaggle, tmp_path, capsys):
    first = data.organize(kaggle, tmp_path / "layouts", seed=3)
    before = snapshot(first.root)
    again = data.organize(kaggle, tmp_path / "layouts", seed=3)
    assert again.root == first.root and again.created == 0 and snapshot(first.root) == before
    assert "already organized with these settings" in capsys.readouterr().out
    other_seed = data.organize(kaggle, tmp_path / "layouts", seed=4)
    other_sample = data.organize(kaggle, tmp_path / "layouts", seed=3, sample_train=10, sample_valid=2)
    assert len({first.root, other_seed.root, other_sample.root}) == 3
    assert names(first.root / "valid" / "cats") != names(other_seed.root / "valid" / "cats")
    assert snapshot(first.root) == before  # the first layout is untouched


def test_added_and_removed_photos_give_a_usable_layout_without_touching_the_source(kaggle, tmp_path):
    first = data.organize(kaggle, tmp_path / "layouts")
    write_image(kaggle / "train" / "cat.60.jpg", 60)
    added = data.organize(kaggle, tmp_path / "layouts")
    assert added.root != first.root
    assert sum(added.counts[split]["cats"] for split in ("train", "valid", "test")) == 61
    (kaggle / "train" / "dog.0.jpg").unlink()
    removed = data.organize(kaggle, tmp_path / "layouts")
    assert sum(removed.counts[split]["dogs"] for split in ("train", "valid", "test")) == 39
    assert not list(removed.root.rglob("dog.0.jpg"))
    assert list(first.root.rglob("dog.0.jpg"))  # earlier layouts keep their photos


def test_pets_returns_a_usable_layout_after_organizing_with_other_settings(kaggle, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    data.main(["organize", str(kaggle), "--sample-train", "100", "--sample-valid", "50"])
    before = snapshot(kaggle)
    for seed in (0, 1):
        layout = data.pets(kaggle, seed=seed, sample_train=400, sample_valid=100)
        assert layout.real and layout.counts["sample/train"] == layout.counts["train"]
        train_ds = keras.utils.image_dataset_from_directory(
            layout.folder(sample=True) / "train", image_size=(12, 16), batch_size=8)
        assert train_ds.class_names == ["cats", "dogs"]
    assert snapshot(kaggle) == before
    assert (tmp_path / "data" / "layouts" / "dogscats").is_dir()


def test_fastai_layout_keeps_its_valid_sample_and_test1(fastai, tmp_path, capsys):
    layout = data.organize(fastai, tmp_path / "layouts", test_fraction=0.25, seed=0)
    assert layout.kind == "fastai"
    assert "fast.ai" in capsys.readouterr().out
    for class_name, prefix in (("cats", "cat"), ("dogs", "dog")):
        assert names(layout.root / "valid" / class_name) == names(fastai / "valid" / class_name)
        assert names(layout.root / "sample" / "train" / class_name) == names(
            fastai / "sample" / "train" / class_name)
        assert names(layout.root / "sample" / "valid" / class_name) == [f"{prefix}.100.jpg"]
        test = set(names(layout.root / "test" / class_name))
        assert len(test) == 12  # a quarter of the 48 labelled photos, taken from train/
        assert not test & set(names(layout.root / "train" / class_name))
        assert not test & set(names(fastai / "sample" / "train" / class_name))  # no sample photo leaks
        assert set(names(layout.root / "sample" / "test" / class_name)) <= test
    assert layout.counts["train"] == {"cats": 28, "dogs": 28}
    assert names(layout.root / "unlabelled") == [f"{i}.jpg" for i in range(1, 6)]


def test_petimages_broken_files_are_left_out_and_listed_and_odd_ones_converted(petimages, tmp_path, capsys):
    before = snapshot(petimages)
    layout = data.organize(petimages, tmp_path / "layouts", seed=0)
    assert layout.kind == "petimages" and layout.dataset == "dogscats"
    assert sorted(layout.skipped) == ["Cat/666.jpg", "Dog/11702.jpg", "Dog/2317.jpg"]
    assert layout.skipped["Cat/666.jpg"] == "empty file (0 bytes)"
    printed = capsys.readouterr().out
    assert "left out Cat/666.jpg: empty file" in printed and "PetImages" in printed
    totals = {c: sum(layout.counts[s][c] for s in ("train", "valid", "test")) for c in ("cats", "dogs")}
    assert totals == {"cats": 21, "dogs": 21}  # 20 good + one odd file each, converted
    converted = next(layout.root.rglob("50.jpg"))
    with PIL.Image.open(converted) as image:
        assert image.mode == "RGB" and image.size == (20, 10)
    manifest = json.loads((layout.root / "layout.json").read_text())
    assert manifest["skipped"] == layout.skipped and sorted(manifest["converted"]) == ["Cat/51.jpg", "Dog/50.jpg"]
    assert snapshot(petimages) == before


def test_class_folders_keep_their_names_and_nested_files(tmp_path):
    source = tmp_path / "animals"
    for class_name, count in (("horse", 10), ("zebra", 6)):
        for i in range(count):
            write_image(source / class_name / f"{i}.png", i)
    write_image(source / "horse" / "extra" / "0.png", 99)
    layout = data.organize(source, tmp_path / "layouts", valid_fraction=0.2, test_fraction=0.2)
    assert layout.kind == "class folders" and layout.dataset == "animals"
    horses = [name for split in ("train", "valid", "test") for name in names(layout.root / split / "horse")]
    assert len(horses) == 11
    files = json.loads((layout.root / "layout.json").read_text())["files"]
    assert "horse/extra/0.png" in files.values() and "horse/0.png" in files.values()


def test_a_layout_the_kit_made_is_used_as_it_is(kaggle, tmp_path, capsys):
    made = data.organize(kaggle, tmp_path / "layouts", seed=2)
    before = snapshot(tmp_path / "layouts")
    again = data.organize(made.root, tmp_path / "layouts", seed=9)
    assert again.kind == "organized" and again.root == made.root
    assert again.counts == {k: v for k, v in made.counts.items() if k != "unlabelled"}
    assert snapshot(tmp_path / "layouts") == before


def test_an_earlier_kits_layout_is_read_as_class_folders_with_its_valid(tmp_path):
    old = tmp_path / "old"  # what `organize SRC DEST` wrote before layouts had a test split
    for split, count in (("train", 12), ("valid", 4), ("sample/train", 3), ("sample/valid", 2)):
        for class_name in ("cats", "dogs"):
            for i in range(count):
                write_image(old / split / class_name / f"{class_name[:3]}.{split[-5:]}{i}.jpg", i)
    for i in range(3):
        write_image(old / "test" / "unknown" / f"{i + 1}.jpg", i)
    (old / "layout.json").write_text(json.dumps({"seed": 0, "files": {}}))
    layout = data.organize(old, tmp_path / "layouts")
    assert layout.kind == "fastai"
    assert names(layout.root / "valid" / "cats") == names(old / "valid" / "cats")
    assert layout.counts["unlabelled"] == {"unknown": 3}


def test_an_interrupted_organize_is_redone_and_never_leaves_half_a_layout(kaggle, tmp_path, monkeypatch):
    calls = []
    real_link = os.link

    def failing_link(source, target):
        calls.append(target)
        if len(calls) == 30:
            raise KeyboardInterrupt  # Ctrl-C in the middle
        real_link(source, target)

    monkeypatch.setattr(os, "link", failing_link)
    with pytest.raises(KeyboardInterrupt):
        data.organize(kaggle, tmp_path / "layouts")
    assert not [p for p in (tmp_path / "layouts" / "dogscats").iterdir() if not p.name.startswith(".")]
    monkeypatch.setattr(os, "link", real_link)
    layout = data.organize(kaggle, tmp_path / "layouts")
    assert sum(sum(group.values()) for group in layout.counts.values()) == len(
        [p for p in layout.root.rglob("*.jpg")])


def test_copies_when_hard_links_are_not_possible(kaggle, tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    layout = data.organize(kaggle, tmp_path / "layouts")
    copied = layout.root / "train" / "cats" / names(layout.root / "train" / "cats")[0]
    assert not os.path.samefile(copied, kaggle / "train" / copied.name)
    assert copied.read_bytes() == (kaggle / "train" / copied.name).read_bytes()


def test_names_a_mac_or_windows_disk_takes_for_one_get_targets_of_their_own(tmp_path, monkeypatch):
    """A Mac's disk (and Windows') ignores case and accent encoding: IMG_0.JPG is img_0.jpg, and "é" is one name
    whether written as one character or as e and a combining accent. Two photos from different subfolders with
    such names must land in different files, or the second would be linked or copied onto the first."""
    source = tmp_path / "pets"
    for class_name in ("cats", "dogs"):
        for i in range(30):
            write_image(source / class_name / f"{i}.jpg", i)
    photos = [source / "cats" / folder / name for folder, name in [
        ("phone", "IMG_0.JPG"), ("camera", "img_0.jpg"), ("phone", "IMG_1.JPG"), ("camera", "img_1.jpg"),
        ("a", "caf\u00e9.jpg"), ("b", "cafe\u0301.jpg"), ("a", "cr\u00e8me.jpg"), ("b", "cre\u0300me.jpg")]]
    for seed, photo in enumerate(photos, 100):
        write_image(photo, seed)
    before = snapshot(source)

    def folded(path):
        path = pathlib.Path(path)
        return path.parent, unicodedata.normalize("NFC", path.name).casefold()

    real_link = os.link

    def link_as_a_mac_disk_would(source_file, target):  # refuses a name the folder already holds, folded
        parent, name = folded(target)
        if parent.is_dir() and any(folded(other)[1] == name for other in parent.iterdir()):
            raise FileExistsError(17, "File exists", str(target))
        real_link(source_file, target)

    monkeypatch.setattr(os, "link", link_as_a_mac_disk_would)
    layout = data.organize(source, tmp_path / "layouts", valid_fraction=0.01, test_fraction=0.01)
    files = json.loads((layout.root / "layout.json").read_text())["files"]
    assert len({folded(target) for target in files}) == len(files)  # no two targets one name on such a disk
    assert sum(layout.counts[split]["cats"] for split in ("train", "valid", "test")) == 38
    for target, photo in files.items():
        assert (layout.root / target).read_bytes() == (source / photo).read_bytes()
    assert snapshot(source) == before


def test_photos_whose_paths_only_case_tells_apart_are_all_kept(tmp_path):
    """A Linux disk may hold cats/IMG.jpg, cats/img.jpg, cats/cats__IMG.jpg and cats/cats__img.jpg: every
    shorter name can be taken, in some order, and a layout on a Mac's disk must still give each its own file."""
    source = tmp_path / "pets"
    for class_name in ("cats", "dogs"):
        for i in range(30):
            write_image(source / class_name / f"{i}.jpg", i)
    twins = ["IMG.jpg", "img.jpg", "cats__IMG.jpg", "cats__img.jpg"]
    for seed, name in enumerate(twins, 100):
        write_image(source / "cats" / name, seed)
    for seed in range(6):  # the order the photos are placed in depends on the seed
        layout = data.organize(source, tmp_path / "layouts", seed=seed, valid_fraction=0.01, test_fraction=0.01)
        files = json.loads((layout.root / "layout.json").read_text())["files"]
        targets = [target for target in files if not target.startswith("sample/")]
        assert len({target.casefold() for target in targets}) == len(targets) == 64, seed
        assert {f"cats/{name}" for name in twins} <= set(files.values())


def test_a_target_already_there_is_never_copied_over(kaggle, tmp_path, monkeypatch):
    """A link refused because its name is taken must not fall back to a copy: the file there may be a hard
    link to another of the learner's photos, which the copy would overwrite."""
    before = snapshot(kaggle)

    def taken(source_file, target):
        raise FileExistsError(17, "File exists", str(target))

    monkeypatch.setattr(os, "link", taken)
    with pytest.raises(FileExistsError):
        data.organize(kaggle, tmp_path / "layouts")
    assert snapshot(kaggle) == before
    assert not list((tmp_path / "layouts").rglob("*.jpg")) and not list((tmp_path / "layouts").rglob("layout.json"))


def test_linked_photos_are_followed_and_linked_folders_are_not_extra_classes(tmp_path, capsys):
    source = tmp_path / "photos"
    for class_name in ("cats", "dogs"):
        for number in range(10):
            write_image(source / class_name / f"{number}.jpg", seed=number)
    write_image(tmp_path / "elsewhere" / "x.jpg", seed=99)
    os.symlink("../../elsewhere/x.jpg", source / "cats" / "link.jpg")  # relative: dangles if copied as a link
    os.symlink("..", source / "dogs" / "loop")  # a folder that contains itself
    os.symlink("cats", source / "kittens")  # the same photos under a second name
    layout = data.organize(source, tmp_path / "layouts", sample_train=3, sample_valid=2, sample_test=2, quiet=True)
    assert set(layout.counts["train"]) == {"cats", "dogs"}
    assert sum(layout.counts[split]["cats"] for split in ("train", "valid", "test")) == 11
    assert sum(layout.counts[split]["dogs"] for split in ("train", "valid", "test")) == 10
    placed = [path for path in layout.root.rglob("*.jpg")]
    assert placed and not any(path.is_symlink() for path in placed) and all(path.is_file() for path in placed)
    assert "kittens" in capsys.readouterr().out


def test_nothing_found_falls_back_to_the_stand_in_and_says_what_was_looked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    (tmp_path / "empty").mkdir()
    layout = data.pets(tmp_path / "empty", standin_count=40, sample_train=4, sample_valid=2, sample_test=2)
    printed = capsys.readouterr().out
    assert not layout.real and layout.kind == layout.dataset == "toy_pets stand-in"
    assert f"No photos found in {tmp_path / 'empty'}" in printed
    for looked_for in layouts.LOOKED_FOR:
        assert looked_for in printed
    assert "python -m utils.data download dogscats" in printed
    assert "Photos: the toy_pets stand-in, drawn in Kaggle's flat layout" in printed
    assert "Kaggle's flat dogs-vs-cats download" not in printed  # the stand-in is not called a download
    assert layout.counts["sample/train"] == {"cats": 4, "dogs": 4}


def test_the_stand_ins_own_layout_given_as_data_dir_is_still_the_stand_in(tmp_path, monkeypatch, capsys, kaggle):
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    (tmp_path / "empty").mkdir()
    drawn = data.pets(tmp_path / "empty", standin_count=40, sample_train=4, sample_valid=2, sample_test=2)
    again = data.pets(drawn.root)  # a layout folder under data/layouts/, passed as DATA_DIR
    assert again.root == drawn.root and not again.real and again.dataset == "toy_pets stand-in"
    real = data.pets(kaggle, sample_train=4, sample_valid=2, sample_test=2)  # a layout of photos stays photos
    assert data.pets(real.root).real and data.pets(real.root).dataset == "dogscats"


def test_the_default_data_dir_not_downloaded_yet_still_gives_the_stand_in(tmp_path, monkeypatch, capsys):
    """What every lesson does on a fresh clone (DATA_DIR = "data/dogscats", no download): CI relies on it."""
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    layout = data.pets("data/dogscats", standin_count=40, sample_train=4, sample_valid=2, sample_test=2)
    assert not layout.real and layout.kind == "toy_pets stand-in"
    assert f"No photos found in {tmp_path / 'data' / 'dogscats'}" in capsys.readouterr().out
    assert not (tmp_path / "data" / "dogscats").exists()  # nothing made where the download goes


@pytest.mark.parametrize("given", ["absolute", "relative"])
def test_a_mistyped_data_dir_outside_data_is_refused_not_replaced_by_the_stand_in(tmp_path, monkeypatch, capsys,
                                                                                  given):
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    missing = tmp_path / "dogscatz" if given == "absolute" else "dogscatz-not-here"  # from the kit's folder
    with pytest.raises(FileNotFoundError) as raised:
        data.pets(missing, standin_count=40)
    where = tmp_path / "dogscatz" if given == "absolute" else paths.ROOT / "dogscatz-not-here"
    assert str(raised.value) == (
        f"{where} does not exist: check the path, or download photos first (`python -m utils.data download "
        "dogscats` saves them in data/dogscats).")
    assert "No photos found" not in capsys.readouterr().out
    assert not (tmp_path / "data").exists() and not where.exists()  # no stand-in drawn, nothing created


def test_a_data_dir_that_is_a_file_is_refused_and_left_as_it_is(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    readme = tmp_path / "README.md"
    readme.write_text("# my notes\n")
    with pytest.raises(ValueError) as raised:
        data.pets(readme, standin_count=40)
    assert str(raised.value) == f"{readme} is a file: pass a folder of photos (unpack an archive into a folder first)."
    assert readme.read_text() == "# my notes\n" and not (tmp_path / "data").exists()
    assert "No photos found" not in capsys.readouterr().out
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dogscats.zip").write_bytes(b"PK")  # a file in data/ too: not the stand-in
    with pytest.raises(ValueError, match="is a file"):
        data.pets("data/dogscats.zip", standin_count=40)


def test_organize_command_says_a_path_does_not_exist_or_is_a_file(tmp_path, capsys):
    photo = tmp_path / "cat.0.jpg"
    write_image(photo)
    before = photo.read_bytes()
    for source, line in ((tmp_path / "missing", f"error: {tmp_path / 'missing'} does not exist: check the path, or "
                          "download photos first (`python -m utils.data download dogscats` saves them in "
                          "data/dogscats).\n"),
                         (photo, f"error: {photo} is a file: pass a folder of photos (unpack an archive into a "
                          "folder first).\n")):
        assert cli.run(data.main, ["organize", str(source), "--layouts", str(tmp_path / "layouts")]) == 2
        captured = capsys.readouterr()
        assert captured.err == line and "Traceback" not in captured.err and captured.out == ""
    assert photo.read_bytes() == before and not (tmp_path / "layouts").exists()


def test_photos_in_no_known_layout_are_refused_not_replaced_by_the_stand_in(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    for number in range(3):
        write_image(tmp_path / "unsorted" / f"IMG_{number}.jpg", seed=number)
    before = snapshot(tmp_path / "unsorted")
    with pytest.raises(ValueError, match="holds 3 images .* one subfolder per class"):
        data.pets(tmp_path / "unsorted", standin_count=40)
    assert snapshot(tmp_path / "unsorted") == before
    assert not (tmp_path / "data").exists()


def test_bad_input_gets_a_message_with_the_next_step(kaggle, tmp_path):
    for fractions in ({"valid_fraction": 1.5}, {"test_fraction": 0}, {"valid_fraction": 0.5, "test_fraction": 0.5}):
        with pytest.raises(ValueError, match=r"valid_fraction=.*: each must be more than 0, and both less than 1"):
            data.organize(kaggle, tmp_path / "layouts", **fractions)
    with pytest.raises(FileNotFoundError, match="does not exist: check the path.*utils.data download dogscats"):
        data.organize(tmp_path / "missing", tmp_path / "layouts")
    few = tmp_path / "few"
    for i in range(10):
        write_image(few / "cats" / f"{i}.jpg", i)
    write_image(few / "dogs" / "0.jpg")
    with pytest.raises(ValueError, match="class 'dogs' has only 1 usable images.*at least 3"):
        data.organize(few, tmp_path / "layouts")


def test_organize_command_prints_the_table_and_where_the_layout_is(kaggle, tmp_path, capsys):
    data.main(["organize", str(kaggle), "--layouts", str(tmp_path / "layouts"), "--sample-train", "4",
               "--sample-valid", "2", "--sample-test", "2", "--seed", "5"])
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("split"))):]
    assert table[0].split() == ["split", "cats", "dogs"]
    assert table[1].split() == ["train", "42", "28"]
    assert table[4].split() == ["sample/train", "4", "4"]
    assert table[7].split() == ["unlabelled", "10"]
    assert any(line.startswith(f"Organized into {tmp_path / 'layouts' / 'dogscats'}") for line in lines)
    (tmp_path / "nothing").mkdir()
    assert cli.run(data.main, ["organize", str(tmp_path / "nothing"), "--layouts", str(tmp_path / "layouts")],
                   expected=data.EXPECTED) == 2
    assert capsys.readouterr().err.startswith("error: no photos found in")


def test_two_terminals_organizing_at_once_build_one_complete_layout(kaggle, tmp_path):
    """The second waits for the first (safely.locked), then reuses its finished layout."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(paths.ROOT), "COURSE_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "utils.data", "organize", str(kaggle), "--layouts", str(tmp_path / "layouts")]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    layout = data.organize(kaggle, tmp_path / "layouts", quiet=True)
    assert layout.created == 0  # already there
    record = json.loads((layout.root / layouts.LAYOUT_FILE).read_text())
    assert sorted(record["files"]) == sorted(p.relative_to(layout.root).as_posix()
                                             for p in layout.root.rglob("*.jpg"))
    assert not [p for p in (tmp_path / "layouts").rglob(".building-*")]


def test_a_finished_layout_is_read_without_a_lock_or_any_write(kaggle, tmp_path, monkeypatch):
    """A class shares one read-only copy of data/: reading a finished layout must not need to write there."""
    first = data.organize(kaggle, tmp_path / "layouts", quiet=True)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "layouts").rglob("*")}

    def no_lock(folder, what):
        raise OSError(30, "Read-only file system", str(folder))  # what opening the .lock file gives there

    monkeypatch.setattr(safely, "locked", no_lock)
    again = data.organize(kaggle, tmp_path / "layouts", quiet=True)
    assert (again.root, again.created) == (first.root, 0)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "layouts").rglob("*")} == before


def test_a_layouts_folder_inside_the_photos_folder_is_refused(kaggle):
    before = snapshot(kaggle)
    with pytest.raises(ValueError, match="is inside the photos' folder .*or pass --layouts a folder outside them"):
        data.organize(kaggle, kaggle / "layouts", quiet=True)
    assert snapshot(kaggle) == before


def test_a_folder_that_cannot_be_listed_stops_organize_instead_of_losing_a_class(tmp_path, monkeypatch):
    for class_name in ("cats", "dogs", "foxes"):
        for i in range(6):
            write_image(tmp_path / "pets" / class_name / f"{i}.jpg", i)
    real_walk = os.walk

    def walk(top, onerror=None, **options):  # what os.walk meets in a folder of mode 000 (root reads anything)
        if str(top).endswith("foxes"):
            if onerror:
                onerror(PermissionError(13, "Permission denied", str(top)))
            return iter(())
        return real_walk(top, onerror=onerror, **options)

    monkeypatch.setattr(os, "walk", walk)
    with pytest.raises(PermissionError, match=r"cannot list the folder .*foxes \(Permission denied\), so its photos "
                                              r"would be left out: fix its permissions \(chmod -R u\+rX"):
        data.organize(tmp_path / "pets", tmp_path / "layouts", quiet=True)


def test_a_photo_that_cannot_be_read_is_left_out_but_not_remembered_as_broken(kaggle, tmp_path, monkeypatch, capsys):
    locked = kaggle / "train" / "cat.3.jpg"
    real_open = PIL.Image.open

    def open_(path, *args, **kwargs):  # what PIL meets for a file of mode 000 (root reads anything)
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(PIL.Image, "open", open_)
    first = data.organize(kaggle, tmp_path / "layouts")
    assert "cannot be read: permission denied (fix its permissions" in capsys.readouterr().out
    assert "train/cat.3.jpg" in first.skipped
    monkeypatch.setattr(PIL.Image, "open", real_open)  # the learner fixed the permissions
    second = data.organize(kaggle, tmp_path / "layouts", quiet=True)
    assert "train/cat.3.jpg" not in second.skipped and second.root != first.root


def test_petimages_beside_class_folders_is_refused_not_made_a_class(tmp_path):
    for class_name in ("cats", "dogs", "PetImages/Cat", "PetImages/Dog"):
        for i in range(6):
            write_image(tmp_path / "pets" / class_name / f"{i}.jpg", i)
    with pytest.raises(ValueError, match="holds class folders and Microsoft's PetImages/ side by side"):
        data.organize(tmp_path / "pets", tmp_path / "layouts", quiet=True)


# A learner's own photos: more classes, other formats, empty folders, stray files, links


def test_webp_and_tiff_photos_in_class_folders_are_used_as_jpegs(tmp_path):
    source = tmp_path / "mine"
    for i in range(8):
        write_image(source / "cats" / f"{i}.jpg", i)
        pixels = np.random.default_rng(i).integers(0, 256, (12, 16, 3), dtype=np.uint8)
        (source / "dogs").mkdir(exist_ok=True)
        PIL.Image.fromarray(pixels).save(source / "dogs" / f"{i}.{'webp' if i % 2 else 'TIFF'}")
    layout = data.organize(source, tmp_path / "layouts", quiet=True)
    assert sum(layout.counts[split]["dogs"] for split in ("train", "valid", "test")) == 8
    placed = sorted((layout.root / "train" / "dogs").iterdir())
    assert placed and all(path.suffix == ".jpg" and PIL.Image.open(path).format == "JPEG" for path in placed)
    assert keras.utils.image_dataset_from_directory(layout.root / "train", image_size=(8, 8)).class_names == [
        "cats", "dogs"]


def test_one_class_with_photos_is_refused_in_one_line_that_says_what_the_others_hold(tmp_path, capsys):
    source = tmp_path / "mine"
    for i in range(6):
        write_image(source / "cats" / f"{i}.jpg", i)
        (source / "dogs").mkdir(exist_ok=True)
        (source / "dogs" / f"IMG_{i}.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")  # an iPhone's photos
    (source / "birds").mkdir()
    (source / "dogs" / "Thumbs.db").write_bytes(b"x")  # Windows' own: not worth a word
    with pytest.raises(ValueError) as refused:
        data.organize(source, tmp_path / "layouts", quiet=True)
    message = str(refused.value)
    assert "\n" not in message and "photos of one class only, cats" in message
    assert f"left out {source / 'birds'}: no photos in it" in message
    assert f"left out 6 files in {source / 'dogs'} that are not photos the kit reads" in message
    assert "such as IMG_0.HEIC" in message and "Thumbs.db" not in message
    assert not (tmp_path / "layouts").exists()
    assert cli.run(data.main, ["organize", str(source), "--layouts", str(tmp_path / "layouts")],
                   expected=data.EXPECTED) == 2
    assert "photos of one class only" in capsys.readouterr().err


def test_three_classes_an_empty_folder_and_unbalanced_counts_are_said(tmp_path, capsys):
    source = tmp_path / "mine"
    for class_name, count in (("cats", 40), ("dogs", 10), ("horse", 10)):
        for i in range(count):
            write_image(source / class_name / f"{i}.jpg", i)
    (source / "zebras").mkdir()
    layout = data.organize(source, tmp_path / "layouts", sample_train=3, sample_valid=2, sample_test=2)
    printed = capsys.readouterr().out
    assert set(layout.counts["train"]) == {"cats", "dogs", "horse"}
    assert layout.dataset == "mine"  # cats and dogs among others: not Kaggle's dogs-vs-cats
    assert f"left out {source / 'zebras'}: no photos in it" in printed
    test = layout.counts["test"]
    share = test["cats"] / sum(test.values())
    assert f"always answering 'cats' is right on {share:.0%} of the test photos" in printed


def test_balanced_classes_get_no_unbalanced_note(kaggle, tmp_path, capsys):
    for i in range(60, 100):
        write_image(kaggle / "train" / f"dog.{i}.jpg", i)
    data.organize(kaggle, tmp_path / "layouts")
    assert "Unbalanced" not in capsys.readouterr().out


def test_a_long_class_name_keeps_the_table_in_line(tmp_path, capsys):
    source = tmp_path / "mine"
    for class_name in ("Other Things From Home", "cats"):
        for i in range(10):
            write_image(source / class_name / f"{i}.jpg", i)
    data.organize(source, tmp_path / "layouts", sample_train=3, sample_valid=2, sample_test=2)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("split ", "train "))]
    header, train = rows
    ends = [header.index(name) + len(name) for name in ("Other Things From Home", "cats")]
    assert ends == [match.end() for match in re.finditer(r"\d+", train)]  # each count under its class's name
    assert header[header.index("cats") - 1] == " "


def test_stray_phone_photos_beside_class_folders_do_not_pass_for_kaggle_names(tmp_path):
    source = tmp_path / "mine"
    for class_name in ("cats", "dogs"):
        for i in range(10):
            write_image(source / class_name / f"{i}.jpg", i)
    write_image(source / "PXL_20240101_101010101.MP.jpg", 1)
    write_image(source / "PXL_20240102_111111111.MP.jpg", 2)
    layout = data.organize(source, tmp_path / "layouts", sample_train=3, sample_valid=2, sample_test=2, quiet=True)
    assert layout.kind == "class folders" and set(layout.counts["train"]) == {"cats", "dogs"}


@pytest.mark.parametrize("link", [os.symlink, os.link])
def test_a_second_name_of_a_photo_is_left_out_so_it_never_lands_in_training_and_test(tmp_path, link):
    source = tmp_path / "mine"
    for class_name in ("cats", "dogs"):
        for i in range(10):
            write_image(source / class_name / f"{i}.jpg", i)
    link(source / "dogs" / "3.jpg", source / "dogs" / "again.jpg")
    before = snapshot(source)
    for seed in range(8):
        layout = data.organize(source, tmp_path / "layouts", seed=seed, quiet=True)
        sources = json.loads((layout.root / "layout.json").read_text())["files"]
        held = {split: {name for target, name in sources.items() if target.startswith(f"{split}/")}
                for split in ("train", "valid", "test")}
        assert "dogs/again.jpg" not in set().union(*held.values())
        assert layout.skipped == {"dogs/again.jpg": "the same photo as dogs/3.jpg"}
        assert sum(layout.counts[split]["dogs"] for split in ("train", "valid", "test")) == 10
    assert snapshot(source) == before


def test_class_folders_that_are_links_are_named_when_nothing_else_is_found(tmp_path, capsys):
    for class_name in ("cats", "dogs"):
        for i in range(6):
            write_image(tmp_path / "elsewhere" / class_name / f"{i}.jpg", i)
        (tmp_path / "mine").mkdir(exist_ok=True)
        os.symlink(tmp_path / "elsewhere" / class_name, tmp_path / "mine" / class_name)
    with pytest.raises(data.NothingFound):
        data.organize(tmp_path / "mine", tmp_path / "layouts", quiet=True)
    printed = capsys.readouterr().out
    assert f"left out {tmp_path / 'mine' / 'cats'}: a link to {tmp_path / 'elsewhere' / 'cats'}" in printed
    assert f"left out {tmp_path / 'mine' / 'dogs'}: a link to" in printed


def test_kaggle_style_names_of_any_class_are_read_and_phone_names_are_not(tmp_path):
    for i in range(8):
        write_image(tmp_path / "breeds" / "train" / f"golden_retriever.{i}.jpg", i)
        write_image(tmp_path / "breeds" / "train" / f"pug.{i}.jpg", i + 50)
    write_image(tmp_path / "breeds" / "train" / "pug.3 (1).jpg", 99)  # a browser's second download of pug.3.jpg
    layout = data.organize(tmp_path / "breeds", tmp_path / "layouts", sample_train=2, sample_valid=1, sample_test=1,
                           quiet=True)
    assert layout.kind == "kaggle" and set(layout.counts["train"]) == {"golden_retriever", "pug"}
    assert sum(layout.counts[split]["pug"] for split in ("train", "valid", "test")) == 9
    assert not layouts.KAGGLE_NAME.fullmatch("PXL_20240101_101010101.MP.jpg")
    assert not layouts.KAGGLE_NAME.fullmatch("IMG_0001.HEIC.jpg")
    assert not layouts.KAGGLE_NAME.fullmatch("Screen Shot 2024-01-01 at 10.00.00.png")
