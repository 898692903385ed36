"""check_images on the kinds of broken and odd files the real cats-and-dogs data holds,
and organize leaving the broken ones out and converting the odd ones."""

import io

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from utils import data, images


def jpeg_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.fixture
def mixed_folder(tmp_path):
    """A Kaggle-style flat folder: good images plus one of each bad and odd kind."""
    folder = tmp_path / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        for kind in ("cat", "dog"):
            pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
            PIL.Image.fromarray(pixels).save(folder / f"{kind}.{i}.jpg")
    PIL.Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
        folder / "dog.4.png")
    noise = jpeg_bytes(PIL.Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    (folder / "cat.10.jpg").write_bytes(noise[: len(noise) * 6 // 10])  # truncated
    (folder / "cat.11.jpg").write_bytes(b"")  # zero bytes
    (folder / "cat.12.jpg").write_text("<html>404 Not Found</html>\n")  # text named .jpg
    (folder / "dog.10.jpg").write_bytes(jpeg_bytes(
        PIL.Image.new("CMYK", (20, 10), (0, 200, 200, 0))))
    PIL.Image.new("RGBA", (10, 12), (255, 0, 0, 128)).save(folder / "dog.11.png")
    PIL.Image.fromarray(np.full((9, 7), 40000, np.uint16)).save(folder / "cat.13.png")
    PIL.Image.new("L", (10, 10), 77).save(folder / "cat.14.jpg")
    return folder


BAD = {"cat.10.jpg": "truncated image", "cat.11.jpg": "empty file (0 bytes)",
       "cat.12.jpg": "text file, not an image"}
ODD = {"dog.10.jpg": "CMYK", "dog.11.png": "RGBA", "cat.13.png": "I;16", "cat.14.jpg": "L"}


def test_check_images_classifies_each_file(mixed_folder):
    report = images.check_images(mixed_folder)
    assert report.checked == 16
    bad = {pathname.rsplit("/", 1)[-1]: reason for pathname, reason in report.bad.items()}
    assert sorted(bad) == sorted(BAD)
    for name, reason in BAD.items():
        assert bad[name].startswith(reason)
    odd = {pathname.rsplit("/", 1)[-1]: mode for pathname, mode in report.odd.items()}
    assert odd == ODD


def test_check_images_agrees_with_pil_on_what_decodes(mixed_folder):
    report = images.check_images(mixed_folder)
    for path in mixed_folder.iterdir():
        try:
            with PIL.Image.open(path) as image:
                image.load()
            decodes = True
        except (OSError, PIL.UnidentifiedImageError):
            decodes = False
        assert decodes == (str(path) not in report.bad), path.name
    assert not PIL.ImageFile.LOAD_TRUNCATED_IMAGES


def test_a_webp_named_jpg_is_odd_because_tensorflow_may_not_read_it(tmp_path):
    PIL.Image.new("RGB", (8, 8), "blue").save(tmp_path / "cat.0.jpg", "WEBP")
    assert images.inspect_image(tmp_path / "cat.0.jpg") == ("odd", "RGB WEBP")


def test_organize_leaves_bad_files_out_and_converts_odd_ones(mixed_folder, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in mixed_folder.iterdir()}
    result = data.organize(mixed_folder, tmp_path / "layouts", valid_fraction=0.25, seed=1)
    assert sorted(result.skipped) == sorted(BAD)
    assert result.converted == 4
    printed = capsys.readouterr().out
    for name in BAD:
        assert f"left out {name}" in printed
    assert {p.name: p.read_bytes() for p in mixed_folder.iterdir()} == before

    layout = result.root
    placed = sorted(p for split in ("train", "valid", "test") for p in (layout / split).rglob("*.*"))
    names = sorted(p.name for p in placed)
    assert names == sorted(
        [f"{kind}.{i}.jpg" for kind in ("cat", "dog") for i in range(4)]
        + ["dog.4.png", "dog.10.jpg", "dog.11.jpg", "cat.13.jpg", "cat.14.jpg"])
    for path in [*placed, *(layout / "sample").rglob("*.*")]:
        image = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
        assert image.shape[-1] == 3 and image.dtype == tf.uint8, path
        with PIL.Image.open(path) as reference:
            assert reference.mode == "RGB", path
            # libjpeg builds differ in chroma upsampling: a few levels on noise images
            difference = np.abs(image.numpy().astype(int) - np.asarray(reference))
            assert difference.max() <= 8 and difference.mean() < 1.5, path

    def converted(name):
        return np.asarray(PIL.Image.open(next(layout.rglob(name)))).astype(int)

    np.testing.assert_allclose(converted("dog.11.jpg"), np.broadcast_to([255, 127, 127],
                               (12, 10, 3)), atol=4)  # half-transparent red over white
    np.testing.assert_allclose(converted("cat.13.jpg"), round(40000 / 257), atol=2)
    np.testing.assert_allclose(converted("cat.14.jpg"), 77, atol=2)
    cmyk = converted("dog.10.jpg")
    assert cmyk.shape == (10, 20, 3)
    with PIL.Image.open(mixed_folder / "dog.10.jpg") as original:
        np.testing.assert_allclose(cmyk, np.asarray(original.convert("RGB")), atol=4)


def test_check_command_lists_bad_and_odd_files(mixed_folder, capsys):
    data.main(["check", str(mixed_folder)])
    printed = capsys.readouterr().out
    assert "16 images checked: 3 bad, 4 odd" in printed
    assert "cat.11.jpg: empty file" in printed and "dog.10.jpg: mode CMYK" in printed


def test_check_images_on_a_missing_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        images.check_images(tmp_path / "nowhere")
