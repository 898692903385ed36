"""utils.birds and utils.array_pipeline: the bird data and its batches."""

import pickle

import keras
import numpy as np
import pytest
from PIL import Image

from utils import array_pipeline, birds, paths

CIFAR_BIRD = 2


def write_fake_cifar(folder, labels_per_batch, meta=True):
    """CIFAR-10's python layout: six pickles of rows of 3,072 bytes (R, G, B planes)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = []
    for name, labels in zip(birds.CIFAR_FILES, labels_per_batch):
        batch = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
        images.append(batch)
        rows = batch.transpose(0, 3, 1, 2).reshape(len(labels), 3072)
        with open(folder / name, "wb") as file:
            pickle.dump({b"data": rows, b"labels": list(labels), b"batch_label": name.encode()}, file)
    if meta:
        names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
                 b"ship", b"truck"]
        with open(folder / "batches.meta", "wb") as file:
            pickle.dump({b"label_names": names, b"num_vis": 3072}, file)
    return np.concatenate(images)


def write_fake_cub(folder, photos):
    """CUB-200-2011's layout: images.txt, bounding_boxes.txt and images/CLASS/NAME.

    `photos` is a list of (PIL image, (x, y, width, height)).
    """
    (folder / "images" / "001.Fake_Bird").mkdir(parents=True)
    listing, boxes = [], []
    for index, (photo, box) in enumerate(photos, start=1):
        name = f"001.Fake_Bird/Fake_Bird_{index:04d}.png"
        photo.save(folder / "images" / name)
        listing.append(f"{index} {name}")
        boxes.append(f"{index} " + " ".join(f"{value:.1f}" for value in box))
    (folder / "images.txt").write_text("\n".join(listing) + "\n")
    (folder / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")


def red_bird_on_blue(width, height, box):
    """A blue photo with a red rectangle where the bird's box is."""
    photo = Image.new("RGB", (width, height), (0, 0, 255))
    x, y, box_width, box_height = box
    photo.paste((255, 0, 0), (int(x), int(y), int(x + box_width), int(y + box_height)))
    return photo


@pytest.fixture
def fake_downloads(tmp_path):
    labels = [[0, 2, 3], [2, 2, 9], [1, 4], [5], [2, 6, 7, 8], [2, 0, 3, 3]]
    cifar_images = write_fake_cifar(tmp_path / "cifar10" / "cifar-10-batches-py", labels)
    photos = [(red_bird_on_blue(90, 70, (20, 10, 40, 40)), (20, 10, 40, 40)),
              (red_bird_on_blue(61, 83, (5, 30, 50, 20)), (5, 30, 50, 20)),
              (red_bird_on_blue(40, 40, (0, 0, 40, 40)), (0, 0, 40, 40))]
    write_fake_cub(tmp_path / "cub200" / "CUB_200_2011", photos)
    return tmp_path, cifar_images, sum(labels, []), photos


def test_load_cifar10_decodes_the_planes_and_finds_the_birds(fake_downloads):
    data_dir, cifar_images, cifar_labels, _ = fake_downloads
    images, is_bird = birds.load_cifar10(data_dir / "cifar10" / "cifar-10-batches-py")
    np.testing.assert_array_equal(images, cifar_images)
    np.testing.assert_array_equal(is_bird, np.array(cifar_labels) == CIFAR_BIRD)


def test_load_cifar10_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download cifar10"):
        birds.load_cifar10(tmp_path)


def test_square_box_centres_a_square_on_the_box_and_stays_inside():
    assert birds.square_box((20, 10, 40, 40), 90, 70) == (20, 10, 60, 50)  # already square
    assert birds.square_box((5, 30, 50, 20), 61, 83) == (5, 15, 55, 65)     # grown in height
    assert birds.square_box((0, 60, 30, 10), 40, 70) == (0, 40, 30, 70)    # pushed back inside
    assert birds.square_box((0, 0, 100, 20), 60, 40) == (20, 0, 60, 40)    # wider than the image


def test_load_cub_crops_to_the_box_and_resizes_like_pil(fake_downloads):
    data_dir, _, _, photos = fake_downloads
    images = birds.load_cub(data_dir / "cub200" / "CUB_200_2011", progress=False)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    # The first box is square: the crop is all bird (red), no background (blue).
    assert images[0][..., 0].min() > 250 and images[0][..., 2].max() < 5
    for image, (photo, box) in zip(images, photos):
        expected = photo.crop(birds.square_box(box, *photo.size)).resize((32, 32), Image.LANCZOS)
        np.testing.assert_array_equal(image, np.asarray(expected))


def test_a_photo_of_yours_is_prepared_as_a_cub_photo_whose_bird_fills_its_centre_square(tmp_path):
    from utils import images

    rng = np.random.default_rng(9)
    photo = Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    write_fake_cub(tmp_path, [(photo, (10, 0, 70, 70))])  # the box is the centre 70x70 square
    cub = birds.load_cub(tmp_path, progress=False)[0]
    yours = images.load_photo(tmp_path / "images" / "001.Fake_Bird" / "Fake_Bird_0001.png", (32, 32),
                              **birds.PHOTO_PREPARATION)
    np.testing.assert_array_equal(yours, cub.astype(np.float32))


def test_load_cub_refuses_an_image_without_a_box(fake_downloads):
    folder = fake_downloads[0] / "cub200" / "CUB_200_2011"
    lines = (folder / "bounding_boxes.txt").read_text().splitlines()
    (folder / "bounding_boxes.txt").write_text("\n".join(lines[:-1]))
    with pytest.raises(ValueError, match="no box for image ids \\['3'\\]"):
        birds.load_cub(folder, progress=False)


def test_bird_dataset_labels_counts_and_cache(fake_downloads, capsys):
    data_dir, cifar_images, cifar_labels, _ = fake_downloads
    data = birds.bird_dataset(data_dir, seed=1, progress=False)
    assert data.real and data.sources == {"cifar10": 17, "cub200": 3}
    labels = np.concatenate([data.train_labels, data.valid_labels, data.test_labels])
    images = np.concatenate([data.train_images, data.valid_images, data.test_images])
    cifar_birds = sum(label == CIFAR_BIRD for label in cifar_labels)
    assert len(labels) == 20 and labels.sum() == cifar_birds + 3
    # Every CIFAR image keeps its label, bird = 1, any other class = 0.
    for image, label in zip(cifar_images, cifar_labels):
        matches = np.flatnonzero((images == image).all(axis=(1, 2, 3)))
        assert len(matches) == 1 and labels[matches[0]] == int(label == CIFAR_BIRD)
    counts = data.class_counts
    assert sum(sum(split.values()) for split in counts.values()) == 20
    assert cifar_birds == 5
    assert counts["test"] == {"not bird": round(12 * birds.HELD_OUT / birds.FULL_SIZE),
                              "bird": round(8 * birds.HELD_OUT / birds.FULL_SIZE)}
    assert (data_dir / "birds" / "birds_cifar10+cub200.npz").is_file()
    assert "Assembled 20 images from cifar10 and cub200" in capsys.readouterr().out
    again = birds.bird_dataset(data_dir, seed=1, progress=False)
    assert "Loaded the assembled birds" in capsys.readouterr().out
    np.testing.assert_array_equal(again.test_images, data.test_images)


def test_each_held_out_image_knows_its_source(fake_downloads):
    data_dir, cifar_images, _, photos = fake_downloads
    data = birds.bird_dataset(data_dir, seed=1, progress=False)
    assert len(data.test_sources) == len(data.test_labels)
    for image, source in zip(data.test_images, data.test_sources):
        from_cifar = (cifar_images == image).all(axis=(1, 2, 3)).any()
        assert source == ("cifar10" if from_cifar else "cub200")
    cub = birds.load_cub(data_dir / "cub200" / "CUB_200_2011", progress=False)
    in_test = [(data.test_images == image).all(axis=(1, 2, 3)).any() for image in cub]
    assert sum(in_test) == int(np.sum(data.test_sources == "cub200"))


def test_bird_dataset_without_cub_uses_cifar_alone_and_says_so(tmp_path, capsys):
    labels = [[2, 0, 3, 2], [2, 2, 9], [1, 4, 2], [5, 2], [2, 6, 7, 8], [2, 0, 3, 3]]  # 8 birds: enough to split
    write_fake_cifar(tmp_path / "cifar10" / "cifar-10-batches-py", labels)
    data = birds.bird_dataset(tmp_path, progress=False)
    assert data.sources == {"cifar10": 20}
    assert "download cub200" in capsys.readouterr().out


def test_bird_dataset_sample_keeps_both_classes(fake_downloads):
    data = birds.bird_dataset(fake_downloads[0], limit=17, seed=0, progress=False)
    total = sum(sum(split.values()) for split in data.class_counts.values())
    assert total == 17 and data.train_labels.min() == 0 and data.train_labels.max() == 1
    with pytest.raises(ValueError, match="too few"):
        birds.bird_dataset(fake_downloads[0], limit=5)


def every_split_has_both_classes(data):
    return all(counts["bird"] > 0 and counts["not bird"] > 0 for counts in data.class_counts.values())


def test_too_few_images_for_a_bird_in_every_split_are_refused_in_one_line(tmp_path, monkeypatch, fake_downloads):
    """SAMPLE_IMAGES 10 to 26 left lesson 5's validation images without a bird, and the lesson crashed later."""
    monkeypatch.setattr(paths, "DATA", tmp_path)  # lesson 5's sample mode asks for as many as it draws
    refused = "^{} images leave the validation images without a bird or without a non-bird: ask for more"
    for count in (10, 26):  # 26 drawings hold 6 birds: one too few for three splits
        with pytest.raises(ValueError, match=refused.format(count) + r" \(at least 27, or 66 with CIFAR-10 alone"):
            birds.bird_dataset(tmp_path / "empty", limit=count, standin_count=count, progress=False)
    assert every_split_has_both_classes(
        birds.bird_dataset(tmp_path / "empty", limit=27, standin_count=27, progress=False))
    with pytest.raises(ValueError, match=refused.format(15)):  # a sample of real data
        birds.bird_dataset(fake_downloads[0], limit=15, progress=False)
    assert every_split_has_both_classes(birds.bird_dataset(fake_downloads[0], limit=17, progress=False))
    data_dir = fake_downloads[0]  # a whole download too small: 17 images, 5 birds
    (data_dir / "cub200" / "CUB_200_2011" / "images.txt").rename(data_dir / "images.txt")
    with pytest.raises(ValueError, match=refused.format(17) + ".*it is incomplete; download it again"):
        birds.bird_dataset(data_dir, progress=False)


def test_bird_dataset_offline_draws_toy_birds_and_says_how_to_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    data = birds.bird_dataset(tmp_path / "empty", standin_count=120, seed=0, progress=False)
    out = capsys.readouterr().out
    assert not data.real and data.sources == {"toy_birds": 120}
    assert "toy_birds stand-in" in out and "download cifar10" in out and "download cub200" in out
    assert data.train_images.shape[1:] == (32, 32, 3)
    assert sum(sum(split.values()) for split in data.class_counts.values()) == 120
    other_split = birds.bird_dataset(tmp_path / "empty", standin_count=120, seed=1, progress=False)
    assert not np.array_equal(other_split.test_labels, data.test_labels) or \
        not np.array_equal(other_split.test_images, data.test_images)  # same drawing, new split


def test_array_dataset_batches_in_order_and_augments():
    images = np.arange(10 * 32 * 32 * 3, dtype=np.uint32).reshape(10, 32, 32, 3).astype(np.uint8)
    labels = np.array([0, 1] * 5)
    ordered = array_pipeline.dataset(images, labels, batch_size=4, shuffle=False,
                                     class_names=birds.CLASS_NAMES)
    batches = list(ordered)
    assert [len(y) for _, y in batches] == [4, 4, 2] and ordered.num_images == 10
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), images.astype(np.float32))
    assert ordered.class_counts == {"not bird": 5, "bird": 5}
    augmented = array_pipeline.dataset(images, labels, batch_size=10, shuffle=False,
                                    augment=keras.layers.RandomFlip("horizontal", seed=0))
    x, y = next(iter(augmented))
    assert x.dtype.name == "float32"
    flipped = [np.array_equal(out, image[:, ::-1].astype(np.float32)) for out, image in zip(np.asarray(x), images)]
    kept = [np.array_equal(out, image.astype(np.float32)) for out, image in zip(np.asarray(x), images)]
    assert all(f or k for f, k in zip(flipped, kept)), "each image is itself or its mirror, nothing else"
    assert any(flipped) and any(kept)  # the flip is random: with 10 images both happen (seed 0)
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(ValueError, match="same"):
        array_pipeline.dataset(images, labels[:3])


def test_the_cub_crop_benchmark_times_load_cub_on_a_folder_laid_out_as_cub(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "cub_crop.json"
    subprocess.run([sys.executable, str(paths.ROOT / "benchmarks" / "cub_crop.py"), "--count", "6", "--repeats", "2",
                    "--out", str(out)], check=True, capture_output=True, timeout=120)
    record = json.loads(out.read_text())
    assert record["photos"] == 6 and record["output_shape"] == [6, 32, 32, 3]
    times = record["ms_per_photo"]
    assert 0 < times["min"] <= times["median"] <= times["max"]
    assert record["seconds_for_all_cub_photos"]["min"] == round(times["min"] * 11788 / 1000, 1)


def test_the_cub_crop_benchmarks_folder_is_one_load_cub_reads(tmp_path):
    import kit_scripts

    kit_scripts.load("benchmarks/cub_crop.py").make_cub(tmp_path, 3)
    images = birds.load_cub(tmp_path, progress=False)
    assert images.shape == (3, 32, 32, 3) and len({image.tobytes() for image in images}) == 3
