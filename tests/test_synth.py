"""The stand-in datasets: Kaggle layout, determinism, variety and class balance."""

import hashlib
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from utils import synth


def digests(folder):
    return {path.relative_to(folder).as_posix(): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*.jpg"))}


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pets")
    counts = synth.toy_pets(folder, 40, seed=3, test_count=6, progress=False)
    return folder, counts


def test_toy_pets_uses_the_kaggle_flat_layout(pets):
    folder, counts = pets
    assert counts == {"cat": 20, "dog": 20, "test": 6}
    train = sorted(path.name for path in (folder / "train").iterdir())
    assert train == sorted([f"cat.{i}.jpg" for i in range(20)] + [f"dog.{i}.jpg" for i in range(20)])
    assert sorted(path.name for path in (folder / "test").iterdir()) == [f"{i}.jpg" for i in range(1, 7)]
    assert sorted(path.name for path in folder.iterdir()) == ["test", "train"]


def test_toy_pets_are_jpegs_of_varied_photo_sizes(pets):
    folder, _ = pets
    sizes = []
    for path in (folder / "train").iterdir():
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            sizes.append(image.size)
    widths, heights = zip(*sizes)
    assert 300 <= min(widths) and max(widths) <= 500 and 250 <= min(heights) and max(heights) <= 450
    assert len(set(sizes)) > 30, "sizes should vary like photos"
    assert 350 < np.mean(widths) < 450 and 300 < np.mean(heights) < 400


def test_toy_pets_same_seed_same_bytes_other_seed_differs(pets, tmp_path):
    folder, _ = pets
    synth.toy_pets(tmp_path / "again", 40, seed=3, test_count=6, progress=False)
    synth.toy_pets(tmp_path / "other", 40, seed=4, test_count=6, progress=False)
    assert digests(tmp_path / "again") == digests(folder)
    other = digests(tmp_path / "other")
    assert other.keys() == digests(folder).keys()
    assert all(other[name] != digest for name, digest in digests(folder).items())


def test_toy_pets_image_depends_only_on_seed_class_and_index(pets, tmp_path):
    folder, _ = pets
    synth.toy_pets(tmp_path, 10, seed=3, test_count=0, progress=False)
    small, large = digests(tmp_path), digests(folder)
    assert small and all(large[name] == digest for name, digest in small.items())


def test_toy_pets_refuses_a_count_below_two(tmp_path):
    with pytest.raises(ValueError, match="count >= 2"):
        synth.toy_pets(tmp_path, 1, progress=False)


@pytest.fixture(scope="module")
def birds():
    return synth.toy_birds(400, seed=1, progress=False)


def test_toy_birds_arrays_and_imbalance(birds):
    images, labels = birds
    assert images.shape == (400, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (400,) and set(np.unique(labels)) == {0, 1}
    assert labels.sum() == 100, "one bird to three not-birds"
    assert images.std() > 30, "images should not be blank"
    assert len({image.tobytes() for image in images}) == 400


def test_toy_birds_deterministic(birds):
    images, labels = birds
    again_images, again_labels = synth.toy_birds(400, seed=1, progress=False)
    other_images, other_labels = synth.toy_birds(400, seed=2, progress=False)
    np.testing.assert_array_equal(again_images, images)
    np.testing.assert_array_equal(again_labels, labels)
    assert not np.array_equal(other_labels, labels) and not np.array_equal(other_images, images)


def test_generate_writes_birds_npz_and_is_a_no_op_the_second_time(tmp_path):
    counts = synth.generate("toy_birds", tmp_path / "birds", 80, seed=0, progress=False)
    assert counts == {"not bird": 60, "bird": 20}
    with np.load(tmp_path / "birds" / "birds.npz") as arrays:
        assert arrays["x"].shape == (80, 32, 32, 3) and arrays["y"].sum() == 20
        assert list(arrays["class_names"]) == ["not bird", "bird"]
    modified = (tmp_path / "birds" / "birds.npz").stat().st_mtime_ns
    assert synth.generate("toy_birds", tmp_path / "birds", 80, seed=0, progress=False) == counts
    assert (tmp_path / "birds" / "birds.npz").stat().st_mtime_ns == modified


def test_generate_refuses_a_folder_holding_something_else(tmp_path):
    (tmp_path / "mine.txt").write_text("a learner's file")
    with pytest.raises(ValueError, match="already holds files"):
        synth.generate("toy_pets", tmp_path, 4, progress=False)
    synth.generate("toy_birds", tmp_path / "b", 8, progress=False)
    with pytest.raises(ValueError, match="already holds files"):
        synth.generate("toy_birds", tmp_path / "b", 8, seed=1, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "a learner's file"


def test_generate_refuses_an_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="toy_pets, toy_birds"):
        synth.generate("toy_fish", tmp_path, 4)


def test_an_interrupted_drawing_is_drawn_afresh_not_refused(tmp_path, monkeypatch):
    real_pet, drawn = synth._pet, []

    def interrupted(rng, kind):
        if len(drawn) == 3:
            raise KeyboardInterrupt
        drawn.append(kind)
        return real_pet(rng, kind)

    monkeypatch.setattr(synth, "_pet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synth.generate("toy_pets", tmp_path / "pets", 6, progress=False)
    assert not (tmp_path / "pets").exists()  # only the kit's hidden .drawing-pets, which the next run replaces
    monkeypatch.setattr(synth, "_pet", real_pet)
    assert synth.generate("toy_pets", tmp_path / "pets", 6, progress=False) == {"cat": 3, "dog": 3, "test": 0}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pets"]
    assert len(list((tmp_path / "pets" / "train").glob("*.jpg"))) == 6


def test_command_line_draws_toy_pets(tmp_path):
    result = subprocess.run([sys.executable, "-m", "utils.data", "synth", "toy_pets", str(tmp_path / "pets"),
                             "--count", "6", "--seed", "2"], capture_output=True, text=True, check=True)
    assert re.search(r"cat 3, dog 3, test 0", result.stdout)
    assert len(list((tmp_path / "pets" / "train").glob("*.jpg"))) == 6


def test_a_small_cnn_learns_toy_pets(tmp_path):
    """A few hundred images and a few epochs: clearly above chance on held-out images."""
    import keras

    from utils import pipeline

    synth.toy_pets(tmp_path / "raw", 500, seed=11, test_count=0, progress=False)
    for path in (tmp_path / "raw" / "train").iterdir():  # cat.N.jpg: N < 50 held out, the rest train
        kind, number, _ = path.name.split(".")
        target = tmp_path / ("held_out" if int(number) < 50 else "train") / f"{kind}s" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.hardlink_to(path)
    train_ds = pipeline.image_dataset(tmp_path / "train", 64, 16, seed=0)
    held_out_ds = pipeline.image_dataset(tmp_path / "held_out", 64, 100, shuffle=False)
    assert train_ds.class_counts == {"cats": 200, "dogs": 200}
    assert held_out_ds.class_counts == {"cats": 50, "dogs": 50}
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255)] + [
        layer for filters in (16, 32, 32) for layer in (
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D())
    ] + [keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_ds, epochs=10, verbose=0)
    accuracy = model.evaluate(held_out_ds, verbose=0, return_dict=True)["accuracy"]
    print(f"small CNN on toy_pets: held-out accuracy {accuracy:.3f} (chance 0.5)")
    assert accuracy >= 0.7, f"held-out accuracy {accuracy:.2f}: toy_pets should be learnable"
