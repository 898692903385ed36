"""organize on a generated Kaggle-style download: counts, stratification, determinism,
idempotence, an untouched source, and the refusals."""

import hashlib
import json
import os
import shutil

import keras
import numpy as np
import PIL.Image
import pytest

from utils import data

CATS, DOGS, TESTS = 60, 40, 10


@pytest.fixture(scope="module")
def download_root(tmp_path_factory):
    """Kaggle's layout: a flat train/ of cat.N.jpg / dog.N.jpg and a flat test/ of N.jpg."""
    root = tmp_path_factory.mktemp("dogscats")
    (root / "train").mkdir()
    (root / "test").mkdir()
    rng = np.random.default_rng(0)

    def write(path):
        PIL.Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)

    for i in range(CATS):
        write(root / "train" / f"cat.{i}.jpg")
    for i in range(DOGS):
        write(root / "train" / f"dog.{i}.jpg")
    for i in range(1, TESTS + 1):
        write(root / "test" / f"{i}.jpg")
    (root / "sample_submission.csv").write_text("id,label\n")
    return root


def snapshot(folder):
    """Every file under `folder`: relative path -> (md5, mtime, inode)."""
    return {p.relative_to(folder).as_posix(): (hashlib.md5(p.read_bytes()).hexdigest(),
                                               p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_counts_stratification_and_hard_links(download_root, tmp_path):
    source = download_root / "train"
    result = data.organize(source, tmp_path, valid_fraction=0.25, sample_train=5,
                           sample_valid=3, seed=0)
    assert result["counts"] == {
        "train": {"cats": 45, "dogs": 30}, "valid": {"cats": 15, "dogs": 10},
        "sample/train": {"cats": 5, "dogs": 5}, "sample/valid": {"cats": 3, "dogs": 3},
        "test": {}}
    for split, counts in result["counts"].items():
        for class_name, count in counts.items():
            assert len(list((tmp_path / split / class_name).iterdir())) == count
    for class_name, prefix, total in (("cats", "cat", CATS), ("dogs", "dog", DOGS)):
        train = {p.name for p in (tmp_path / "train" / class_name).iterdir()}
        valid = {p.name for p in (tmp_path / "valid" / class_name).iterdir()}
        assert not train & valid
        assert train | valid == {f"{prefix}.{i}.jpg" for i in range(total)}
        assert {p.name for p in (tmp_path / "sample/train" / class_name).iterdir()} <= train
        assert {p.name for p in (tmp_path / "sample/valid" / class_name).iterdir()} <= valid
    linked = next((tmp_path / "train" / "cats").iterdir())
    assert os.path.samefile(linked, source / linked.name)  # a hard link, not a copy


def test_same_seed_same_split_other_seed_other_split(download_root, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        data.organize(download_root / "train", tmp_path / name, seed=seed)
    assert listing(tmp_path / "a") != [] and listing(tmp_path / "a") == listing(tmp_path / "b")
    valid_a = set(os.listdir(tmp_path / "a/valid/cats"))
    valid_c = set(os.listdir(tmp_path / "c/valid/cats"))
    assert len(valid_a) == len(valid_c) == round(CATS * 0.2) and valid_a != valid_c


def test_second_run_changes_nothing_and_says_so(download_root, tmp_path, capsys):
    data.organize(download_root, tmp_path / "layout")
    before = snapshot(tmp_path / "layout")
    capsys.readouterr()
    result = data.organize(download_root, tmp_path / "layout")
    assert result["created"] == 0
    assert "already organized with these settings: nothing to do" in capsys.readouterr().out
    assert snapshot(tmp_path / "layout") == before


def test_an_interrupted_layout_is_completed(download_root, tmp_path):
    data.organize(download_root, tmp_path)
    removed = sorted((tmp_path / "valid/dogs").iterdir())[:2]
    for path in removed:
        path.unlink()
    assert data.organize(download_root, tmp_path)["created"] == 2
    assert all(path.exists() for path in removed)


def test_source_is_never_changed(download_root, tmp_path):
    before = snapshot(download_root)
    data.organize(download_root, tmp_path / "layout", seed=7)
    with pytest.raises(ValueError):
        data.organize(download_root, tmp_path / "layout", seed=8)
    assert snapshot(download_root) == before


def test_refuses_a_layout_made_with_other_settings(download_root, tmp_path):
    data.organize(download_root, tmp_path, seed=1)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"other settings \(seed=1;.*choose another DEST"):
        data.organize(download_root, tmp_path, seed=2)
    with pytest.raises(ValueError, match="valid_fraction=0.2"):
        data.organize(download_root, tmp_path, seed=1, valid_fraction=0.3)
    assert snapshot(tmp_path) == before


def test_refuses_unknown_files_in_the_layout(download_root, tmp_path):
    data.organize(download_root, tmp_path)
    stray = tmp_path / "train" / "cats" / "my_cat.jpg"
    stray.write_bytes((download_root / "train" / "cat.0.jpg").read_bytes())
    with pytest.raises(ValueError, match="1 files that this layout would not contain.*my_cat"):
        data.organize(download_root, tmp_path)
    assert stray.exists()


def test_refuses_a_folder_organized_by_hand(download_root, tmp_path):
    (tmp_path / "valid" / "cats").mkdir(parents=True)
    (tmp_path / "valid" / "cats" / "cat.0.jpg").write_bytes(b"moved by hand")
    with pytest.raises(ValueError, match="would not contain"):
        data.organize(download_root, tmp_path)
    assert listing(tmp_path) == ["valid/cats/cat.0.jpg"]


def test_in_place_on_the_download_root_next_to_the_flat_files(download_root, tmp_path):
    root = tmp_path / "dogscats"
    for folder in ("train", "test"):
        (root / folder).mkdir(parents=True)
        for path in (download_root / folder).iterdir():
            os.link(path, root / folder / path.name)
    flat_before = snapshot(root)
    result = data.organize(root, root)
    assert result["counts"]["test"] == {"unknown": TESTS}
    assert result["counts"]["train"] == {"cats": 48, "dogs": 32}
    assert {k: v for k, v in snapshot(root).items() if k in flat_before} == flat_before
    assert data.organize(root, root)["created"] == 0
    # Keras reads the class folders and ignores the flat files next to them.
    train_ds = keras.utils.image_dataset_from_directory(
        root / "train", image_size=(12, 16), batch_size=8, shuffle=False)
    assert train_ds.class_names == ["cats", "dogs"] and len(train_ds.file_paths) == 80
    test_ds = keras.utils.image_dataset_from_directory(
        root / "test" / "unknown", labels=None, image_size=(12, 16), batch_size=8)
    assert len(test_ds.file_paths) == TESTS
    manifest = json.loads((root / "layout.json").read_text())
    assert manifest["seed"] == 0 and len(manifest["files"]) == sum(
        sum(counts.values()) for counts in result["counts"].values())


def test_class_subfolders_keep_their_names(tmp_path):
    for class_name, count in (("horse", 10), ("zebra", 5)):
        (tmp_path / "src" / class_name / "extra").mkdir(parents=True)
        for i in range(count):
            PIL.Image.new("RGB", (4, 4), "red").save(tmp_path / "src" / class_name / f"{i}.png")
    PIL.Image.new("RGB", (4, 4), "red").save(tmp_path / "src/horse/extra/0.png")
    result = data.organize(tmp_path / "src", tmp_path / "dest", valid_fraction=0.2)
    assert result["counts"]["train"] == {"horse": 9, "zebra": 4}
    assert result["counts"]["valid"] == {"horse": 2, "zebra": 1}
    assert "extra__0.png" in set(os.listdir(tmp_path / "dest/train/horse")) | set(
        os.listdir(tmp_path / "dest/valid/horse"))
    with pytest.raises(ValueError, match="overlaps the class folders"):
        data.organize(tmp_path / "src", tmp_path / "src")


def test_bad_input_gets_a_message_with_the_next_step(download_root, tmp_path):
    with pytest.raises(ValueError, match="between 0 and 1"):
        data.organize(download_root, tmp_path, valid_fraction=1.5)
    with pytest.raises(FileNotFoundError, match="python -m utils.data download dogscats"):
        data.organize(tmp_path / "missing", tmp_path / "dest")
    with pytest.raises(ValueError, match="cannot tell the class of .*1.jpg"):
        data.organize(download_root / "test", tmp_path / "dest")


def test_organize_command_prints_the_table(download_root, tmp_path, capsys):
    data.main(["organize", str(download_root), str(tmp_path), "--sample-train", "4",
               "--sample-valid", "2", "--seed", "5"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["split", "cats", "dogs", "unknown"]
    assert lines[1].split() == ["train", "48", "32", "0"]
    assert lines[3].split() == ["sample/train", "4", "4", "0"]
    assert lines[5].split() == ["test", "0", "0", "10"]
    with pytest.raises(SystemExit, match="error: .*other settings"):
        data.main(["organize", str(download_root), str(tmp_path), "--seed", "6"])


def test_layout_still_matches_after_moving_the_data_folder(download_root, tmp_path):
    shutil.copytree(download_root, tmp_path / "old")
    data.organize(tmp_path / "old", tmp_path / "old" / "organized")
    (tmp_path / "old").rename(tmp_path / "new")
    assert data.organize(tmp_path / "new", tmp_path / "new" / "organized")["created"] == 0
