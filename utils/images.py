"""Checking image files before training: which are bad, which are odd (lesson 3).

Real photo collections contain files that crash training: empty files, text
saved as .jpg, truncated JPEGs, and images in modes a model does not expect
(grayscale, CMYK, transparency, 16-bit). `check_images` finds them;
`data.organize` leaves the bad ones out and converts the odd ones with
`to_rgb_jpeg`.

From a terminal: `python -m utils.data check data/dogscats/train`.
"""

import concurrent.futures
import dataclasses
import json
import os
import pathlib

import numpy as np
import PIL.Image
import tqdm

from utils import paths

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TF_FORMATS = ("JPEG", "PNG", "GIF", "BMP")  # what tf.io.decode_image reads


def is_image_name(path):
    """True for a file whose extension is one of `IMAGE_EXTENSIONS`."""
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


@dataclasses.dataclass
class ImageReport:
    """What `check_images` found.

    Attributes:
        checked: how many files with an image extension were read.
        bad: `{path: reason}` for files that cannot be decoded.
        odd: `{path: mode}` for decodable images that are not 8-bit RGB
            (grayscale, CMYK, transparency, 16-bit) or not in a format
            TensorFlow decodes.
    """

    checked: int = 0
    bad: dict = dataclasses.field(default_factory=dict)
    odd: dict = dataclasses.field(default_factory=dict)


def inspect_image(path):
    """Decodes one file fully with PIL.

    Returns:
        `("ok", "RGB")`, `("odd", mode)` or `("bad", reason)`.
    """
    path = pathlib.Path(path)
    if path.stat().st_size == 0:
        return "bad", "empty file (0 bytes)"
    try:
        with PIL.Image.open(path) as image:
            image.load()
            mode, image_format = image.mode, image.format
    except PIL.UnidentifiedImageError:
        head = path.read_bytes()[:512]
        if all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in head):
            return "bad", "text file, not an image"
        return "bad", "not an image PIL can read"
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as error:
        if "truncated" in str(error):
            return "bad", f"truncated image ({error})"
        return "bad", f"cannot be decoded ({error})"
    if image_format not in TF_FORMATS:
        return "odd", f"{mode} {image_format}"
    return ("ok", mode) if mode == "RGB" else ("odd", mode)


def check_images(folder):
    """Finds the image files in `folder` (and below) that are bad or odd.

    Args:
        folder: a folder of images, searched recursively; only files with an
            image extension (.jpg, .jpeg, .png, .bmp, .gif) are read.

    Returns:
        An `ImageReport`.
    """
    folder = paths.resolve(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder of images to check.")
    return check_files(sorted(p for p in folder.rglob("*") if is_image_name(p)))


def check_files(files, cache=None):
    """Runs `inspect_image` on `files` in parallel (PIL decodes outside the GIL).

    Args:
        files: image files.
        cache: a JSON file remembering each file's verdict with its size and
            modification time, so that only new or changed files are decoded
            the next time (25,000 photos take about a minute); None for no cache.

    Returns:
        An `ImageReport`.
    """
    files = [pathlib.Path(path) for path in files]
    known = _read_cache(cache)
    verdicts, todo = {}, []
    for path in files:
        stat = path.stat()
        entry = known.get(str(path))
        if entry and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
            verdicts[path] = entry[2:]
        else:
            todo.append((path, [stat.st_size, stat.st_mtime_ns]))
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        results = pool.map(inspect_image, [path for path, _ in todo])
        for (path, stamp), verdict in zip(todo, tqdm.tqdm(
                results, total=len(todo), desc="checking images", disable=len(todo) < 500)):
            verdicts[path] = list(verdict)
            known[str(path)] = stamp + list(verdict)
    if cache is not None and todo:
        cache = pathlib.Path(cache)
        cache.parent.mkdir(parents=True, exist_ok=True)
        paths.write_text(cache, json.dumps(known))
    report = ImageReport(checked=len(files))
    for path in files:
        status, detail = verdicts[path]
        if status != "ok":
            getattr(report, status)[str(path)] = detail
    return report


def _read_cache(cache):
    try:
        known = json.loads(pathlib.Path(cache).read_text()) if cache else {}
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def to_rgb_jpeg(source, target):
    """Writes `source` as an 8-bit RGB JPEG: transparency over white, 16 bits scaled to 8."""
    with PIL.Image.open(source) as image:
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            grey = np.asarray(image).astype(np.float64) / 257.0
            image = PIL.Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            background = PIL.Image.new("RGBA", image.size, "white")
            image = PIL.Image.alpha_composite(background, image)
        partial = target.with_name(target.name + ".part")
        image.convert("RGB").save(partial, "JPEG", quality=95)
    partial.replace(target)


ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held


def exif_orientation(path):
    """The EXIF orientation of an image file (1 = upright, as stored), 1 when it has none."""
    try:
        with PIL.Image.open(path) as image:
            orientation = image.getexif().get(ORIENTATION_TAG, 1)
    except (OSError, ValueError):
        return 1
    return orientation if orientation in range(1, 9) else 1


def upright(pixels, orientation):
    """Turns decoded pixels (height, width, channels) upright by their EXIF orientation.

    A phone stores a portrait photo as a landscape image plus a tag saying how
    to turn it; TensorFlow's decoder ignores the tag. This does what
    `PIL.ImageOps.exif_transpose` does, on the array.
    """
    turns = {1: lambda x: x, 2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
             5: lambda x: x.transpose(1, 0, 2), 6: lambda x: np.rot90(x, -1),
             7: lambda x: np.rot90(x, -1)[::-1], 8: lambda x: np.rot90(x, 1)}
    return np.ascontiguousarray(turns[orientation](pixels))
