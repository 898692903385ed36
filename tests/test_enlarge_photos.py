"""benchmarks/enlarge_photos.py: Kaggle-sized copies of small photos, for timing lesson 3 at original sizes."""

import numpy as np
import pytest
from PIL import Image

import kit_scripts

enlarge_photos = kit_scripts.load("benchmarks/enlarge_photos.py")


def smooth_photo(seed):
    """A 200x200 RGB photo of smooth colour ramps (JPEG keeps them, so copies can be compared)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:200, 0:200] / 200
    channels = [rng.uniform(40, 200) + rng.uniform(-50, 50) * x + rng.uniform(-50, 50) * y for _ in range(3)]
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8))


def test_the_last_photos_of_each_class_are_enlarged_to_kaggle_sizes(tmp_path):
    source = tmp_path / "small" / "train"
    source.mkdir(parents=True)
    originals = {}
    for name in ("cat", "dog"):
        for number in (2, 9, 10):  # the last two by number are 9 and 10; by name, 9 and 2
            originals[f"{name}.{number}.jpg"] = smooth_photo(len(originals))
            originals[f"{name}.{number}.jpg"].save(source / f"{name}.{number}.jpg", quality=95)

    enlarge_photos.main([str(source.parent), str(tmp_path / "big"), "--photos", "4"])

    written = sorted(path.name for path in (tmp_path / "big" / "train").iterdir())
    assert written == ["cat.10.jpg", "cat.9.jpg", "dog.10.jpg", "dog.9.jpg"]
    for name in written:
        with Image.open(tmp_path / "big" / "train" / name) as photo:
            assert photo.format == "JPEG" and photo.mode == "RGB"
            assert max(photo.size) == 500 and 280 <= min(photo.size) <= 500
            back = np.asarray(photo.resize((200, 200), Image.LANCZOS), dtype=float)
        assert np.abs(back - np.asarray(originals[name], dtype=float)).mean() < 3  # the same photo, larger


def test_an_existing_folder_is_refused_and_left_alone(tmp_path):
    (tmp_path / "small" / "train").mkdir(parents=True)
    mine = tmp_path / "big" / "train" / "cat.1.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"a learner's photo")
    with pytest.raises(SystemExit, match="exists; give a new folder"):
        enlarge_photos.main([str(tmp_path / "small"), str(tmp_path / "big")])
    assert mine.read_bytes() == b"a learner's photo"


def test_too_few_photos_are_refused_before_anything_is_written(tmp_path):
    source = tmp_path / "small" / "train"
    source.mkdir(parents=True)
    smooth_photo(0).save(source / "cat.0.jpg")
    with pytest.raises(SystemExit, match="has 1 cat photos; --photos 4 needs 2"):
        enlarge_photos.main([str(source.parent), str(tmp_path / "big"), "--photos", "4"])
    assert not (tmp_path / "big").exists()
