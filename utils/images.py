"""Image files: finding the ones that crash training, and turning one photo into model input (lessons 1, 3 to 5)."""

import contextlib
import dataclasses
import json
import os
import pathlib
import re
import warnings

import numpy as np
import PIL.Image
import PIL.ImageOps
from tqdm import tqdm
from tqdm.contrib.concurrent import thread_map

from utils import safely

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".avif")  # organize: JPEG
TF_FORMATS = ("JPEG", "PNG", "GIF", "BMP")  # what image_dataset_from_directory takes (RGB ones: see load_photo)
# What PIL may open here, whatever a file is named: never EPS (PIL would run Ghostscript on it) or rarer formats.
PIL_FORMATS = (*TF_FORMATS, "WEBP", "AVIF", "TIFF")  # a phone's multi-picture JPEG (MPO) opens as JPEG
UNREADABLE = "cannot be read: permission denied"
ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held


def is_image_name(path):
    """True for a file whose extension is one of `IMAGE_EXTENSIONS`."""
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


@dataclasses.dataclass
class ImageReport:
    """What `check_files` found."""

    checked: int = 0  # how many files were read
    bad: dict = dataclasses.field(default_factory=dict)  # {path: reason}: they cannot be decoded
    odd: dict = dataclasses.field(default_factory=dict)  # {path: mode}: not 8-bit RGB, or not a format TF decodes

    def __str__(self):  # what `python -m utils.data check` prints
        lines = [f"bad  {path}: {reason}" for path, reason in sorted(self.bad.items())]
        lines += [f"odd  {path}: mode {mode}" for path, mode in sorted(self.odd.items())]
        return "\n".join([*lines, f"{self.checked} images checked: {len(self.bad)} bad, {len(self.odd)} odd (organize "
                                  "leaves bad ones out and converts odd ones)."])


def inspect_image(path):
    """Decodes one file (a path) fully with PIL: `("ok", "RGB")`, `("odd", mode)` or `("bad", reason)`."""
    if path.stat().st_size == 0:
        return "bad", "empty file (0 bytes)"
    try:
        with PIL.Image.open(path, formats=PIL_FORMATS) as image:
            image.load()
            mode, image_format = image.mode, image.format
    except PermissionError:
        return "bad", f"{UNREADABLE} (fix its permissions: chmod u+r)"
    except PIL.UnidentifiedImageError:
        text = all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in path.read_bytes()[:512])
        return "bad", "text file, not an image" if text else "not an image PIL can read"
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as error:
        return "bad", f"truncated image ({error})" if "truncated" in str(error) else f"cannot be decoded ({error})"
    if image_format not in TF_FORMATS:
        return "odd", f"{mode} {image_format}"
    return ("ok", mode) if mode == "RGB" else ("odd", mode)


def check_files(files, cache=None):
    """Runs `inspect_image` on image `files` (paths) in parallel: an `ImageReport`.

    Args:
        cache: a JSON file of verdicts by size and modification time, so only new or changed files are decoded;
            None for no cache.
    """
    try:
        known = json.loads(cache.read_text()) if cache else {}
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    stamps = {path: [path.stat().st_size, path.stat().st_mtime_ns] for path in files}
    todo = [path for path in files if (known.get(str(path)) or [])[:2] != stamps[path]]
    results = thread_map(inspect_image, todo, max_workers=os.cpu_count(), desc="checking images", unit="image",
                         disable=len(todo) < 500, tqdm_class=tqdm)  # text, as the other bars (a widget's is not saved)
    verdicts = dict(zip(todo, results))
    for path, verdict in verdicts.items():
        if not verdict[1].startswith(UNREADABLE):  # permissions change without touching the file
            known[str(path)] = stamps[path] + list(verdict)
    if cache and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        safely.write_text(cache, json.dumps(known))
    report = ImageReport(checked=len(files))
    for path in files:
        status, detail = verdicts.get(path) or known[str(path)][2:]
        if status != "ok":
            getattr(report, status)[str(path)] = detail
    return report


def upright_rgb(image):
    """A PIL image turned upright by its EXIF orientation, as 8-bit RGB: transparency over white, 16 bits scaled to
    8 (not clipped to white). A damaged EXIF block (PIL's SyntaxError "not a TIFF file") leaves it as stored."""
    with contextlib.suppress(SyntaxError):  # as `exif_orientation` does
        image = PIL.ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = np.asarray(image).astype(np.float64) / 257.0
        image = PIL.Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = PIL.Image.alpha_composite(PIL.Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return image.convert("RGB")


def to_rgb_jpeg(source, target):
    """Writes `source` as an upright 8-bit RGB JPEG (`upright_rgb`): how organizing stores an odd training photo."""
    with PIL.Image.open(source, formats=PIL_FORMATS) as image:
        partial = target.with_name(target.name + ".part")
        upright_rgb(image).save(partial, "JPEG", quality=95)  # as open_photo reads it
    partial.replace(target)  # a new name, never written through: a target already there may link to a source photo


def exif_orientation(path):
    """The EXIF orientation of an image file (1 = upright, as stored), 1 when it has none."""
    try:
        with PIL.Image.open(path, formats=PIL_FORMATS) as image:
            orientation = image.getexif().get(ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError):  # SyntaxError: a damaged EXIF block
        return 1
    return orientation if orientation in range(1, 9) else 1


def upright(image, orientation):
    """Turns an image (height, width, channels) upright by its EXIF orientation (1-8), in TensorFlow ops."""
    import tensorflow as tf

    return tf.switch_case(tf.convert_to_tensor(orientation, tf.int32) - 1, [
        lambda: image, lambda: tf.image.flip_left_right(image), lambda: tf.image.rot90(image, 2),
        lambda: tf.image.flip_up_down(image), lambda: tf.image.transpose(image),
        lambda: tf.image.rot90(image, 3), lambda: tf.image.flip_up_down(tf.image.rot90(image, 3)),
        lambda: tf.image.rot90(image, 1)])


class PhotoError(ValueError):
    """A photo file that cannot be used (a folder, not an image, damaged, too large): the message says why and what
    to do. `open_photo` and `load_photo` raise it, or FileNotFoundError for no such file."""


def _opened(path):
    """`PIL.Image.open(path)` with the size checked, or a `FileNotFoundError` / `PhotoError` saying why not."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise PhotoError(f"{path} is a folder, not a photo: name a photo in it (or, for utils.predict, {path}/*.jpg).")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; check the path.")
    try:  # PIL warns of a file over MAX_IMAGE_PIXELS (about 89 megapixels): refused, not decoded
        with warnings.catch_warnings(action="error", category=PIL.Image.DecompressionBombWarning):
            return PIL.Image.open(path, formats=PIL_FORMATS)  # reads the header only
    except (PIL.Image.DecompressionBombWarning, PIL.Image.DecompressionBombError):
        raise PhotoError(f"{path} is too large to read safely (over {PIL.Image.MAX_IMAGE_PIXELS / 1e6:.0f} "
                         "megapixels); save a smaller copy and use that.") from None
    except PermissionError:
        raise PhotoError(f"{path} cannot be read: permission denied: fix its permissions (chmod u+r), or copy "
                         "it somewhere you can read it.") from None
    except PIL.UnidentifiedImageError as error:
        raise PhotoError(f"{path} is not an image this kit can read ({error}); pass a JPEG, PNG, GIF, BMP, WebP, "
                         "TIFF or AVIF photo.") from None
    except (OSError, ValueError) as error:  # a known format, damaged (ValueError: a PNG chunk too large)
        raise PhotoError(f"{path} is damaged ({error}); pass another photo.") from None


def open_photo(path):
    """An image file as an upright 8-bit RGB `PIL.Image` (`upright_rgb`), to look at or to filter (lesson 1)."""
    with _opened(path) as image:
        try:
            return upright_rgb(image)
        except (OSError, ValueError) as error:  # truncated or damaged pixel data
            raise PhotoError(f"{path} is damaged ({error}); pass another photo.") from None


def shrink(photo, box, image_size, resample="lanczos"):
    """The `box` (left, top, right, bottom) of a PIL photo, resized to (height, width): uint8 pixels (lesson 5)."""
    height, width = image_size
    return np.asarray(photo.crop(box).resize((width, height), PIL.Image.Resampling[resample.upper()]))


def load_photo(path, image_size, fit="squash", resample="bilinear"):
    """One photo file as model input of `image_size` (height, width), upright: float32 (height, width, 3), 0-255.

    Args:
        fit: "squash" as `pipeline.image_dataset` reads photos (lessons 3, 4), or "crop" to the centre square,
            shrunk with PIL by `shrink` as `utils.birds` prepared the CUB photos (lesson 5).
        resample: for "squash" a `tf.image.resize` method ("bilinear", "area", ...); for "crop" a PIL filter name.
    """
    if fit not in ("squash", "crop"):
        raise ValueError(f"fit must be 'squash' or 'crop', not {fit!r}")
    if fit == "crop":
        photo = open_photo(path)
        side = min(photo.size)
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
        return shrink(photo, (left, top, left + side, top + side), image_size, resample).astype(np.float32)
    import tensorflow as tf

    with _opened(path) as image:  # as organizing took training photos: 8-bit RGB JPEG, PNG, GIF as they are
        tf_decodes = image.format in TF_FORMATS and image.mode == "RGB"
    try:
        if tf_decodes:  # the decoder the training photos went through
            pixels = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
            pixels = upright(pixels, exif_orientation(path))
        else:  # the rest as `to_rgb_jpeg` converted them for training (PIL); the resize is still TensorFlow's
            pixels = np.asarray(open_photo(path))
    except tf.errors.InvalidArgumentError as error:  # without TensorFlow's "{{function_node ...}}" prefix
        reason = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", error.message).splitlines()[0]
        raise PhotoError(f"{path} is damaged ({reason}); pass another photo.") from None
    resized = tf.image.resize(pixels, image_size, method=resample)
    return tf.round(tf.clip_by_value(resized, 0, 255)).numpy()
