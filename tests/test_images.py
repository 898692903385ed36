"""Checking image files (`python -m utils.data check`) on the kinds of broken and odd files the real cats-and-dogs
data holds, and organize leaving the broken ones out and converting the odd ones."""

import io
import os

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
import tensorflow as tf

from utils import cli, data, images, layouts


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


def check_images(folder):
    """What `python -m utils.data check` reports on `folder`."""
    return images.check_files(layouts.image_files(folder))


def test_check_images_classifies_each_file(mixed_folder):
    report = check_images(mixed_folder)
    assert report.checked == 16
    bad = {pathname.rsplit("/", 1)[-1]: reason for pathname, reason in report.bad.items()}
    assert sorted(bad) == sorted(BAD)
    for name, reason in BAD.items():
        assert bad[name].startswith(reason)
    odd = {pathname.rsplit("/", 1)[-1]: mode for pathname, mode in report.odd.items()}
    assert odd == ODD


def test_every_file_check_images_passes_decodes_in_tensorflow_as_training_reads_it(mixed_folder):
    """The reference is TensorFlow's own decoder, the one training uses, not PIL (which `check_images` uses)."""
    import tensorflow as tf

    report = check_images(mixed_folder)
    refused = []
    for path in sorted(mixed_folder.iterdir()):
        try:
            decoded = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False).numpy()
        except (tf.errors.InvalidArgumentError, ValueError):
            refused.append(path.name)
            assert str(path) in report.bad or str(path) in report.odd, f"{path.name}: TensorFlow cannot read it"
            continue
        if str(path) not in report.bad and str(path) not in report.odd:  # passed as fine: exactly as PIL sees it
            with PIL.Image.open(path) as image:
                assert decoded.shape == (image.height, image.width, 3), path.name
    assert {"cat.10.jpg", "cat.11.jpg", "cat.12.jpg"} <= set(refused)  # truncated, empty, text: TF refuses them too
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


def test_check_leaves_out_hidden_files_as_organize_does(mixed_folder, capsys):
    (mixed_folder / "._cat.0.jpg").write_bytes(b"\x00\x05\x16\x07")  # a Mac's AppleDouble file on a USB disk
    (mixed_folder / ".thumbnails").mkdir()
    (mixed_folder / ".thumbnails" / "cat.0.jpg").write_bytes(b"")
    data.main(["check", str(mixed_folder)])
    printed = capsys.readouterr().out
    assert "16 images checked: 3 bad, 4 odd" in printed and "._cat" not in printed and ".thumbnails" not in printed


def test_a_damaged_photo_of_a_known_format_is_called_damaged_not_an_unknown_format(tmp_path):
    noise = jpeg_bytes(PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    (tmp_path / "cut.jpg").write_bytes(noise[:30])  # the header itself is cut short
    with pytest.raises(images.PhotoError, match=r"cut\.jpg is damaged \(.*\); pass another photo\.$"):
        images.load_photo(tmp_path / "cut.jpg", (8, 8))


def test_check_on_a_missing_folder_or_a_file_says_so(tmp_path, capsys):
    (tmp_path / "cat.jpg").write_bytes(b"")
    assert cli.run(data.main, ["check", str(tmp_path / "nowhere")], expected=data.EXPECTED) == 2
    assert "nowhere does not exist: check the path" in capsys.readouterr().err
    assert cli.run(data.main, ["check", str(tmp_path / "cat.jpg")], expected=data.EXPECTED) == 2
    assert "cat.jpg is a file: pass a folder of photos" in capsys.readouterr().err


# images.load_photo and open_photo: one photo file as model input


def test_load_photo_gives_the_pixels_the_training_pipeline_gives(tmp_path):
    from utils import pipeline

    rng = np.random.default_rng(3)
    for class_name, size in (("cats", (57, 31)), ("dogs", (20, 90))):
        (tmp_path / class_name).mkdir()
        PIL.Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(tmp_path / class_name / "0.jpg")
    dataset = pipeline.image_dataset(tmp_path, (24, 40), batch_size=2, shuffle=False)
    batch, _ = next(iter(dataset))
    for index, path in enumerate(dataset.file_paths):
        np.testing.assert_array_equal(images.load_photo(path, (24, 40)), batch[index].numpy())


@pytest.mark.parametrize("interpolation", ["bilinear", "area"])
def test_load_photo_follows_the_pipelines_resize_method(tmp_path, interpolation):
    from utils import pipeline

    (tmp_path / "cats").mkdir()
    pixels = np.random.default_rng(4).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(tmp_path / "cats" / "0.png")
    batch, _ = next(iter(pipeline.image_dataset(tmp_path, 32, batch_size=1, shuffle=False,
                                                interpolation=interpolation)))
    np.testing.assert_array_equal(images.load_photo(tmp_path / "cats" / "0.png", (32, 32), resample=interpolation),
                                  batch[0].numpy())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_load_photo_turns_a_phone_photo_upright_as_pil_does(tmp_path, orientation):
    pixels = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    image = PIL.Image.fromarray(pixels)
    exif = image.getexif()
    exif[images.ORIENTATION_TAG] = orientation
    image.save(tmp_path / "phone.png", exif=exif)  # PNG: lossless, so the pixels compare exactly
    expected = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(tmp_path / "phone.png")).convert("RGB"))
    loaded = images.load_photo(tmp_path / "phone.png", expected.shape[:2])
    np.testing.assert_array_equal(loaded, expected.astype(np.float32))


def test_the_training_pipeline_turns_phone_photos_upright_as_load_photo_does(tmp_path):
    from utils import pipeline

    rng = np.random.default_rng(5)
    for orientation in range(1, 9):
        pixels = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
        pixels[:10, :10] = 255  # a white corner, so that every turn looks different
        image = PIL.Image.fromarray(pixels)
        exif = image.getexif()
        exif[images.ORIENTATION_TAG] = orientation
        folder = tmp_path / ("cats" if orientation % 2 else "dogs")
        folder.mkdir(exist_ok=True)
        image.save(folder / f"{orientation}.png", exif=exif)
    dataset = pipeline.image_dataset(tmp_path, 32, batch_size=8, shuffle=False)
    batch = next(iter(dataset))[0].numpy()
    for index, path in enumerate(dataset.file_paths):
        expected = images.load_photo(path, (32, 32))  # turned first, then resized
        assert np.abs(batch[index] - expected).max() <= 1, path  # the same, up to rounding
        as_stored = tf.image.resize(np.asarray(PIL.Image.open(path).convert("RGB")), (32, 32)).numpy()
        if not path.endswith("1.png"):
            assert np.abs(batch[index] - as_stored).max() > 50, path  # it really was turned


def test_load_photo_crops_the_centre_square_with_pils_lanczos(tmp_path):
    pixels = np.random.default_rng(6).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(tmp_path / "wide.png")
    square = PIL.Image.fromarray(pixels[:, 12:57])  # the centre 45x45: (70 - 45) // 2 = 12 from the left
    expected = np.asarray(square.resize((20, 20), PIL.Image.LANCZOS), dtype=np.float32)
    np.testing.assert_array_equal(images.load_photo(tmp_path / "wide.png", (20, 20), fit="crop",
                                                    resample="lanczos"), expected)


def test_load_photo_reads_formats_tensorflow_cannot_decode(tmp_path):
    pixels = np.random.default_rng(7).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(tmp_path / "scan.tiff")
    expected = tf.round(tf.image.resize(pixels, (16, 16))).numpy()
    np.testing.assert_array_equal(images.load_photo(tmp_path / "scan.tiff", (16, 16)), expected)


def test_16_bit_grey_is_scaled_to_8_bits_not_shifted_or_clipped():
    values = np.array([[0, 257, 1000, 40000, 51460, 65535]], np.uint16)
    converted = np.asarray(images.upright_rgb(PIL.Image.fromarray(values)))
    expected = values.astype(np.int64) * 255 // 65535  # 65535 is 255: the full 16-bit range onto the 8-bit one
    np.testing.assert_array_equal(converted, np.repeat(expected[..., None], 3, axis=-1))
    assert expected.tolist() == [[0, 1, 3, 155, 200, 255]]


@pytest.mark.parametrize("fit", ["squash", "crop"])
def test_an_odd_photo_is_read_as_organizing_converted_it_for_training(tmp_path, fit):
    """Transparency over white and 16 bits scaled to 8 (`images.upright_rgb`), not TensorFlow's or PIL's plain RGB."""
    PIL.Image.new("RGBA", (12, 12), (255, 0, 0, 128)).save(tmp_path / "logo.png")
    PIL.Image.fromarray(np.full((12, 12), 40000, np.uint16)).save(tmp_path / "scan.png")
    expected = {"logo.png": [255, 127, 127], "scan.png": [round(40000 / 257)] * 3}
    for name, colour in expected.items():
        pixels = images.load_photo(tmp_path / name, (6, 6), fit=fit)
        np.testing.assert_allclose(pixels, np.broadcast_to(colour, (6, 6, 3)), atol=1)
        with PIL.Image.open(tmp_path / name) as original:
            images.to_rgb_jpeg(tmp_path / name, tmp_path / f"{name}.jpg")  # what training reads instead
            trained_on = images.load_photo(tmp_path / f"{name}.jpg", (6, 6), fit=fit)
        np.testing.assert_allclose(pixels, trained_on, atol=2)


def test_palette_and_one_bit_bmps_are_read_as_pil_reads_them(tmp_path):
    rng = np.random.default_rng(11)
    palette = PIL.Image.fromarray(rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)).quantize(16)
    palette.save(tmp_path / "palette.bmp")
    PIL.Image.fromarray(rng.integers(0, 2, (10, 14), dtype=np.uint8) * 255).convert("1").save(tmp_path / "bw.bmp")
    for name in ("palette.bmp", "bw.bmp"):
        with PIL.Image.open(tmp_path / name) as reference:  # same size: the resize changes nothing
            np.testing.assert_array_equal(images.load_photo(tmp_path / name, (10, 14)),
                                          np.asarray(reference.convert("RGB")))
        assert images.inspect_image(tmp_path / name)[0] == "odd"  # organizing converts them to JPEG, with PIL


def test_an_odd_phone_photo_is_stored_upright_for_training_as_it_is_read_to_answer(tmp_path):
    image = PIL.Image.fromarray(np.arange(20 * 40, dtype=np.uint8).reshape(20, 40), "L")  # grey: odd
    exif = image.getexif()
    exif[images.ORIENTATION_TAG] = 6
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    images.to_rgb_jpeg(tmp_path / "phone.jpg", tmp_path / "stored.jpg")
    with PIL.Image.open(tmp_path / "stored.jpg") as stored:
        assert stored.size == images.open_photo(tmp_path / "phone.jpg").size == (20, 40)


def test_a_png_whose_text_chunk_is_too_large_is_refused_in_one_line(tmp_path):
    import PIL.PngImagePlugin

    info = PIL.PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * 2 * PIL.PngImagePlugin.MAX_TEXT_CHUNK, zip=True)  # a few kilobytes on disk
    PIL.Image.new("RGB", (8, 8)).save(tmp_path / "ztxt.png", pnginfo=info)
    for fit in ("squash", "crop"):
        with pytest.raises(images.PhotoError, match=r"ztxt.png is damaged \(Decompressed"):
            images.load_photo(tmp_path / "ztxt.png", (8, 8), fit=fit)


def test_load_photo_refuses_a_huge_photo_before_decoding_it(tmp_path, monkeypatch):
    PIL.Image.new("RGB", (300, 200)).save(tmp_path / "huge.jpg")
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 50_000)
    for fit in ("squash", "crop"):
        with pytest.raises(images.PhotoError, match=r"huge.jpg is too large to read safely \(over 0 megapixels\)"):
            images.load_photo(tmp_path / "huge.jpg", (32, 32), fit=fit)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 20_000)  # PIL itself now calls it a bomb
    with pytest.raises(images.PhotoError, match="too large to read safely"):
        images.open_photo(tmp_path / "huge.jpg")


@pytest.mark.parametrize("fit", ["squash", "crop"])
def test_load_photo_says_what_is_wrong_with_a_bad_file(tmp_path, fit):
    (tmp_path / "notes.jpg").write_text("not a photo")
    good = io.BytesIO()
    PIL.Image.fromarray(np.random.default_rng(8).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(good.getvalue()[:len(good.getvalue()) // 2])  # a download cut short
    cases = {tmp_path / "notes.jpg": "is not an image this kit can read", tmp_path / "cut.jpg": "is damaged",
             tmp_path: "is a folder"}
    for path, message in cases.items():
        with pytest.raises(images.PhotoError, match=message) as raised:
            images.load_photo(path, (16, 16), fit=fit)
        assert "\n" not in str(raised.value) and "function_node" not in str(raised.value)  # TensorFlow's insides
    with pytest.raises(FileNotFoundError, match="no such file"):
        images.load_photo(tmp_path / "missing.jpg", (16, 16), fit=fit)


def test_open_photo_is_upright_rgb(tmp_path):
    pixels = np.zeros((10, 20), np.uint8)
    pixels[:, :10] = 255  # grayscale, white on the left as stored
    image = PIL.Image.fromarray(pixels)
    exif = image.getexif()
    exif[images.ORIENTATION_TAG] = 8  # turn 90 degrees counter-clockwise to view: white at the bottom
    image.save(tmp_path / "gray.png", exif=exif)
    photo = images.open_photo(tmp_path / "gray.png")
    assert photo.mode == "RGB" and photo.size == (10, 20)
    assert np.asarray(photo)[-5:].min() == 255 and np.asarray(photo)[:5].max() == 0


def test_a_photo_without_read_permission_is_called_that_not_a_non_image(tmp_path, monkeypatch):
    PIL.Image.new("RGB", (8, 8)).save(tmp_path / "locked.jpg")

    def denied(path, *args, **kwargs):  # what a file of mode 000 gives a learner (root reads anything)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(PIL.Image, "open", denied)
    with pytest.raises(images.PhotoError, match=r"locked.jpg cannot be read: permission denied: fix its permissions"):
        images.load_photo(tmp_path / "locked.jpg", (8, 8))


def test_a_postscript_file_named_like_a_photo_is_refused_without_running_ghostscript(tmp_path, monkeypatch):
    """PIL picks a decoder by a file's content, and for EPS it runs Ghostscript on it: a photo from the web, a
    learner's folder or the web page of `utils.serve` must never get there, whatever it is called."""
    import PIL.EpsImagePlugin

    tools = tmp_path / "bin"
    tools.mkdir()
    ghostscript = tools / "gs"  # a stand-in that only writes down that it ran
    ghostscript.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "gs-ran"}\nexit 0\n')
    ghostscript.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.setattr(PIL.EpsImagePlugin, "gs_binary", None)  # found again, on this PATH
    photo = tmp_path / "cat.jpg"
    photo.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    for read in (images.open_photo, lambda path: images.load_photo(path, (8, 8)),
                 lambda path: images.load_photo(path, (8, 8), fit="crop")):
        with pytest.raises(images.PhotoError, match="is not an image this kit can read"):
            read(photo)
    assert images.inspect_image(photo)[0] == "bad" and images.exif_orientation(photo) == 1
    assert not (tmp_path / "gs-ran").exists()


def test_a_damaged_exif_block_leaves_the_photo_as_stored(tmp_path):
    """PIL raises SyntaxError ("not a TIFF file") for a damaged EXIF block: the pixels are fine, so the photo is
    used as stored (orientation 1), by every reader and by organizing, instead of stopping with a traceback."""
    stored = np.zeros((6, 10, 3), np.uint8)
    stored[:, :5] = (200, 30, 30)
    photo = tmp_path / "odd.webp"
    PIL.Image.fromarray(stored).save(photo, "WEBP", lossless=True, exif=b"Exif\x00\x00not-a-tiff-header")
    with PIL.Image.open(photo) as image, pytest.raises(SyntaxError):
        image.getexif()  # what PIL itself does with it
    assert images.exif_orientation(photo) == 1
    np.testing.assert_array_equal(np.asarray(images.open_photo(photo)), stored)
    np.testing.assert_array_equal(images.load_photo(photo, (6, 10)), stored)
    assert images.load_photo(photo, (4, 4), fit="crop").shape == (4, 4, 3)
    images.to_rgb_jpeg(photo, tmp_path / "odd.jpg")
    assert PIL.Image.open(tmp_path / "odd.jpg").size == (10, 6)


def test_at_a_non_square_size_the_pipeline_flips_photos_and_refuses_sideways_ones(tmp_path):
    from utils import pipeline

    rng = np.random.default_rng(8)
    for orientation in (1, 2, 3, 4):  # as stored, mirrored, half a turn, flipped: no quarter turn
        pixels = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
        pixels[:10, :10] = 255
        image = PIL.Image.fromarray(pixels)
        exif = image.getexif()
        exif[images.ORIENTATION_TAG] = orientation
        folder = tmp_path / "photos" / ("cats" if orientation % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{orientation}.png", exif=exif)
    dataset = pipeline.image_dataset(tmp_path / "photos", (24, 40), batch_size=4, shuffle=False)
    batch = next(iter(dataset))[0].numpy()
    for index, path in enumerate(dataset.file_paths):
        assert np.abs(batch[index] - images.load_photo(path, (24, 40))).max() <= 1, path
    exif = image.getexif()
    exif[images.ORIENTATION_TAG] = 6  # a quarter turn
    image.save(tmp_path / "photos" / "dogs" / "6.png", exif=exif)
    with pytest.raises(ValueError, match=r"photos in .* \(1\) are stored on their side .* as one number"):
        pipeline.image_dataset(tmp_path / "photos", (24, 40))
    assert pipeline.image_dataset(tmp_path / "photos", 32).num_images == 5  # a square size turns it


def test_check_on_a_folder_with_no_image_says_so_and_fails(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a photo")  # a wrong folder: "0 images checked: 0 bad" read as all good
    assert cli.run(data.main, ["check", str(tmp_path)], expected=data.EXPECTED) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: no images in {tmp_path} or its subfolders (JPEG, PNG" in err
