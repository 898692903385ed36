"""Stand-in datasets the kit draws, so every lesson runs offline: `toy_pets` (lessons 3, 4, 6), `toy_birds` (lesson 5).

Image `i` depends only on the seed, its class and `i`. From a terminal:
`python -m utils.data synth toy_pets data/toy_pets --count 1500 --seed 0`.
"""

import json
import pathlib
import shutil

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

DATASETS = ("toy_pets", "toy_birds")
BIRD_CLASS_NAMES = ("not bird", "bird")
MARKER = "SYNTH.json"  # in a stand-in's folder: what was drawn there (`generate`), and that it is drawn
BIRD_FRACTION = 0.25  # CIFAR-10 birds + CUB birds against 9 other CIFAR-10 classes: about 1 to 3
NOT_BIRDS = ("cat", "dog", "fish", "car", "airplane", "ship", "frog", "shapes")
FUR = [(222, 140, 60), (120, 80, 50), (128, 128, 128), (45, 40, 40), (240, 238, 230),
       (235, 215, 170), (190, 150, 100), (90, 90, 100)]


def _colour(rng, base=None, spread=30):
    base = FUR[rng.integers(len(FUR))] if base is None else base
    return tuple(int(v) for v in np.clip(np.array(base) + rng.integers(-spread, spread + 1, 3), 0, 255))


def _mix(colour, other, weight):
    return tuple(int(a * (1 - weight) + b * weight) for a, b in zip(colour, other))


def _oval(cx, cy, rx, ry, angle=0.0, points=28):
    """A rotated ellipse as a polygon (PIL's own ellipses cannot rotate)."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return [(float(cx + c * a - s * b), float(cy + s * a + c * b)) for a, b in zip(x, y)]


def _background(rng, width, height):
    """A gradient, blotchy noise, stripes or a plain colour, with grain."""
    a, b = (np.array(_colour(rng, tuple(rng.integers(0, 256, 3)), 0), float) for _ in range(2))
    t = np.zeros((height, width))  # kind 3 below: a plain colour
    kind = rng.integers(4)
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:height, 0:width]
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = (t - t.min()) / max(np.ptp(t), 1)
    elif kind == 1:  # a few random levels, smoothly enlarged
        small = Image.fromarray((rng.random((rng.integers(3, 9), rng.integers(3, 9))) * 255).astype(np.uint8))
        t = np.asarray(small.resize((width, height), Image.BICUBIC), float) / 255
    elif kind == 2:
        period = rng.integers(12, 60)
        xx = np.arange(width) if rng.random() < 0.5 else np.arange(height)[:, None]
        t = np.broadcast_to((xx // period) % 2, (height, width)) * rng.uniform(0.2, 0.7)
    image = a + (b - a) * t[..., None] + rng.normal(0, rng.uniform(2, 14), (height, width, 1))
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def _clutter(rng, draw, width, height, count):
    for _ in range(count):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        size = rng.uniform(0.04, 0.25) * min(width, height)
        kind = rng.integers(4)
        if kind == 0:
            draw.polygon(_oval(x, y, size, size * rng.uniform(0.3, 1), rng.uniform(0, 3)), fill=colour)
        elif kind == 1:
            draw.rectangle([x, y, x + size, y + size * rng.uniform(0.3, 1.5)], fill=colour)
        elif kind == 2:
            draw.polygon([(x + rng.uniform(-size, size), y + rng.uniform(-size, size)) for _ in range(3)], fill=colour)
        else:
            draw.line([x, y, x + rng.uniform(-2, 2) * size, y + rng.uniform(-2, 2) * size],
                      fill=colour, width=int(rng.integers(1, 5)))


def _pet_head(rng, kind, size):
    """A cat or dog head, on a transparent square layer of `size` pixels."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    fur = _colour(rng)
    dark = _mix(fur, (20, 15, 10), rng.uniform(0.2, 0.6))
    cx, cy = size / 2, size * 0.55
    rx = size * rng.uniform(0.27, 0.32)
    ry = rx * rng.uniform(0.85, 1.1 if kind == "cat" else 1.2)
    ny = cy + ry * 0.2  # the nose
    if kind == "cat":  # pointed ears, drawn behind the face
        for side in (-1, 1):
            tip = (cx + side * rx * rng.uniform(0.6, 0.95), cy - ry * rng.uniform(1.35, 1.7))
            ear = [(cx + side * rx * 0.95, cy - ry * 0.25), tip, (cx + side * rx * 0.15, cy - ry * 0.9)]
            draw.polygon(ear, fill=fur)
            draw.polygon([_mix(p, (cx, cy - ry * 0.6), 0.35) for p in ear], fill=_mix(fur, (240, 150, 160), 0.6))
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fur)
    if kind == "dog" or rng.random() < 0.3:  # muzzle: a dog's is big, some cats have a pale chin
        scale = rng.uniform(0.5, 0.65) if kind == "dog" else rng.uniform(0.3, 0.4)
        mx, my = rx * scale, ry * scale * 0.75
        draw.ellipse([cx - mx, cy + ry * 0.35 - my, cx + mx, cy + ry * 0.35 + my],
                     fill=_mix(fur, (250, 245, 235), rng.uniform(0.3, 0.7)))
    eyes = [(90, 60, 30), (90, 60, 30), (190, 140, 50)] if kind == "dog" else [
        (120, 200, 80), (230, 200, 60), (100, 170, 230), (150, 100, 40)]
    eye_colour = eyes[rng.integers(len(eyes))]
    ex, ey = rx * rng.uniform(0.12, 0.18), ry * rng.uniform(0.14, 0.2)
    for side in (-1, 1):
        x, y = cx + side * rx * 0.4, cy - ry * 0.12
        draw.ellipse([x - ex, y - ey, x + ex, y + ey], fill=eye_colour)
        pupil = ex * (0.3 if kind == "cat" else 0.6)
        draw.ellipse([x - pupil, y - ey * 0.9, x + pupil, y + ey * 0.9], fill=(10, 10, 10))
        draw.ellipse([x - ex * 0.35, y - ey * 0.6, x - ex * 0.05, y - ey * 0.25], fill=(255, 255, 255))
    if kind == "cat":
        nose = rx * rng.uniform(0.08, 0.12)
        draw.polygon([(cx - nose, ny - nose * 0.6), (cx + nose, ny - nose * 0.6), (cx, ny + nose * 0.6)],
                     fill=(230, 130, 150))
        width = max(1, int(size / 120))
        for side in (-1, 1):
            draw.arc([cx - (side > 0) * nose * 2, ny, cx + (side < 0) * nose * 2, ny + nose * 2.5],
                     0, 180, fill=dark, width=width)
            if rng.random() < 0.9:
                whisker = (30, 30, 30) if sum(fur) > 450 else (245, 245, 245)
                for k in range(3):
                    end = (cx + side * rx * rng.uniform(1.05, 1.4), ny + ry * (-0.15 + 0.2 * k))
                    draw.line([(cx + side * rx * 0.25, ny + ry * 0.1 * k), end], fill=whisker, width=width)
    else:
        nose_x, nose_y = rx * rng.uniform(0.16, 0.24), ry * rng.uniform(0.1, 0.14)
        if rng.random() < 0.5:  # tongue
            draw.ellipse([cx - rx * 0.13, cy + ry * 0.5, cx + rx * 0.13, cy + ry * 0.9], fill=(225, 90, 110))
        draw.line([(cx, ny), (cx, cy + ry * 0.55)], fill=(30, 20, 20), width=max(1, int(size / 100)))
        draw.ellipse([cx - nose_x, ny - nose_y, cx + nose_x, ny + nose_y], fill=(25, 20, 20))
        ear = dark if rng.random() < 0.7 else fur
        for side in (-1, 1):  # floppy ears hang over the sides of the head
            draw.polygon(_oval(cx + side * rx * 0.95, cy + ry * rng.uniform(-0.1, 0.15), rx * 0.28,
                               ry * rng.uniform(0.55, 0.75), side * rng.uniform(-0.5, 0.1)), fill=ear)
    return layer


def _pet(rng, kind):
    width, height = int(rng.integers(300, 501)), int(rng.integers(250, 451))
    image = _background(rng, width, height)
    draw = ImageDraw.Draw(image)
    _clutter(rng, draw, width, height, int(rng.integers(2, 9)))
    size = int(min(width, height) * rng.uniform(0.4, 0.95))
    head = _pet_head(rng, kind, size).rotate(rng.uniform(-35, 35), Image.BICUBIC, expand=True)
    x = int(rng.integers(-size // 8, max(1, width - head.width + size // 8)))
    y = int(rng.integers(-size // 8, max(1, height - head.height + size // 8)))
    image.paste(head, (x, y), head)
    _clutter(rng, draw, width, height, int(rng.integers(0, 4)))  # a few things in front
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    return image


def toy_pets(dest, count, seed=0, test_count=None, progress=True):
    """Draws cartoon cats and dogs in the Kaggle dogs-vs-cats layout (lessons 3, 4).

    Writes `count` labeled images (at least 2), half cats and half dogs, as `dest/train/cat.0.jpg ...`,
    and `test_count` unlabeled ones (default `count // 10`) as `dest/test/1.jpg ...`.

    Returns:
        The counts: `{"cat": ..., "dog": ..., "test": ...}`.
    """
    if count < 2:
        raise ValueError(f"toy_pets needs count >= 2 (one cat and one dog), got {count}")
    counts = {"cat": (count + 1) // 2, "dog": count // 2, "test": count // 10 if test_count is None else test_count}
    dest = pathlib.Path(dest)
    (dest / "train").mkdir(parents=True, exist_ok=True)
    (dest / "test").mkdir(parents=True, exist_ok=True)
    jobs = [(kind, i, dest / "train" / f"{kind}.{i}.jpg") for kind in ("cat", "dog") for i in range(counts[kind])]
    jobs += [(None, i, dest / "test" / f"{i}.jpg") for i in range(1, counts["test"] + 1)]
    for kind, index, path in tqdm(jobs, desc="drawing toy_pets", disable=not progress):
        rng = np.random.default_rng([seed, 0 if kind is None else 1 + (kind == "dog"), index])
        kind = kind or ("cat", "dog")[rng.integers(2)]
        _pet(rng, kind).save(path, quality=int(rng.integers(75, 96)))
    return counts


def _bird_scene(rng, kind):
    """One 32x32 picture: drawn at 96x96, then shrunk (anti-aliased)."""
    image = _background(rng, 96, 96)
    draw = ImageDraw.Draw(image)
    _clutter(rng, draw, 96, 96, int(rng.integers(0, 3)))
    cx, cy, s = rng.uniform(32, 64), rng.uniform(34, 62), rng.uniform(0.7, 1.25)
    face = -1 if rng.random() < 0.5 else 1
    main, other = _colour(rng, tuple(rng.integers(0, 256, 3)), 0), _colour(rng)
    if kind == "bird":
        tilt = rng.uniform(-0.4, 0.4)
        draw.polygon([(cx - face * 18 * s, cy - 4 * s), (cx - face * 32 * s, cy - rng.uniform(-8, 10) * s),
                      (cx - face * 30 * s, cy + 6 * s)], fill=other)  # tail
        draw.polygon(_oval(cx, cy, 19 * s, 11 * s, tilt), fill=main)
        hx, hy = cx + face * 17 * s, cy - 9 * s
        draw.ellipse([hx - 8 * s, hy - 8 * s, hx + 8 * s, hy + 8 * s], fill=main)
        draw.polygon([(hx + face * 6 * s, hy - 3 * s), (hx + face * 17 * s, hy + 1 * s),
                      (hx + face * 6 * s, hy + 3 * s)], fill=(240, 170, 40))  # beak
        draw.ellipse([hx + face * 2 * s - 2, hy - 4 * s - 2, hx + face * 2 * s + 2, hy - 4 * s + 2], fill=(0, 0, 0))
        flap = rng.uniform(-1.2, 0.3)  # wing raised (flying) or folded
        draw.polygon(_oval(cx - face * 2 * s, cy - 4 * s + flap * 10 * s, 13 * s, 5 * s, face * flap), fill=other)
        if rng.random() < 0.6:  # perched: legs
            for dx in (-4, 3):
                draw.line([(cx + dx * s, cy + 9 * s), (cx + dx * s, cy + 20 * s)], fill=(200, 120, 40), width=2)
    elif kind in ("cat", "dog"):
        head = _pet_head(rng, kind, int(70 * s)).rotate(rng.uniform(-20, 20), Image.BICUBIC)
        image.paste(head, (int(cx - head.width / 2), int(cy - head.height / 2)), head)
    elif kind == "fish":
        draw.polygon([(cx - face * 16 * s, cy), (cx - face * 30 * s, cy - 12 * s),
                      (cx - face * 30 * s, cy + 12 * s)], fill=other)
        draw.polygon(_oval(cx, cy, 20 * s, 11 * s, rng.uniform(-0.3, 0.3)), fill=main)
        draw.ellipse([cx + face * 11 * s - 2, cy - 4 * s - 2, cx + face * 11 * s + 2, cy - 4 * s + 2], fill=(0, 0, 0))
    elif kind == "car":
        draw.rectangle([cx - 28 * s, cy - 6 * s, cx + 28 * s, cy + 10 * s], fill=main)
        draw.polygon([(cx - 15 * s, cy - 6 * s), (cx - 9 * s, cy - 18 * s), (cx + 12 * s, cy - 18 * s),
                      (cx + 18 * s, cy - 6 * s)], fill=_mix(main, (170, 210, 240), 0.6))
        for dx in (-17, 17):
            draw.ellipse([cx + (dx - 7) * s, cy + 3 * s, cx + (dx + 7) * s, cy + 17 * s], fill=(25, 25, 25))
    elif kind == "airplane":
        draw.polygon(_oval(cx, cy, 32 * s, 5 * s, rng.uniform(-0.3, 0.3)), fill=main)
        draw.polygon([(cx - 6 * s, cy), (cx + face * 6 * s, cy - 24 * s), (cx + face * 14 * s, cy - 24 * s),
                      (cx + face * 8 * s, cy)], fill=other)
        draw.polygon([(cx - face * 24 * s, cy), (cx - face * 32 * s, cy - 14 * s),
                      (cx - face * 27 * s, cy - 14 * s), (cx - face * 18 * s, cy)], fill=other)
    elif kind == "ship":
        draw.polygon([(cx - 30 * s, cy), (cx + 30 * s, cy), (cx + 22 * s, cy + 12 * s),
                      (cx - 22 * s, cy + 12 * s)], fill=main)
        draw.rectangle([cx - 10 * s, cy - 12 * s, cx + 8 * s, cy], fill=other)
        draw.line([(cx - 1, cy - 12 * s), (cx - 1, cy - 28 * s)], fill=(40, 40, 40), width=2)
    elif kind == "frog":
        green = _colour(rng, (70, 160, 60), 40)
        draw.polygon(_oval(cx, cy + 4 * s, 22 * s, 14 * s), fill=green)
        for side in (-1, 1):
            x = cx + side * 10 * s
            draw.ellipse([x - 6 * s, cy - 14 * s, x + 6 * s, cy - 2 * s], fill=green)
            draw.ellipse([x - 2 * s, cy - 10 * s, x + 2 * s, cy - 6 * s], fill=(0, 0, 0))
    else:
        _clutter(rng, draw, 96, 96, int(rng.integers(2, 5)))
    return np.asarray(image.resize((32, 32), Image.LANCZOS))


def toy_birds(count, seed=0, progress=True):
    """Draws 32x32 cartoon birds and not-birds (`NOT_BIRDS`), about 1 bird to 3 others (lesson 5).

    Returns:
        `(images, labels)`: uint8 array [count, 32, 32, 3] and int64 array
        [count] with 0 for "not bird" and 1 for "bird" (`BIRD_CLASS_NAMES`).
    """
    if count < 1:
        raise ValueError(f"toy_birds needs count >= 1, got {count}")
    is_bird = np.arange(count) < round(count * BIRD_FRACTION)
    labels = np.random.default_rng([seed, 3]).permutation(is_bird).astype(np.int64)
    images = np.empty((count, 32, 32, 3), np.uint8)
    for index in tqdm(range(count), desc="drawing toy_birds", disable=not progress):
        rng = np.random.default_rng([seed, 4, index])
        kind = "bird" if labels[index] else NOT_BIRDS[rng.integers(len(NOT_BIRDS))]
        images[index] = _bird_scene(rng, kind)
    return images, labels


def generate(name, dest, count, seed=0, progress=True):
    """Writes stand-in `name` to `dest`, or does nothing if `dest/SYNTH.json` says it is already there.

    `toy_pets` gives the Kaggle layout, `toy_birds` gives `dest/birds.npz` with arrays `x`, `y` and
    `class_names`. A folder holding anything else is refused, never overwritten.

    Returns:
        The counts per class (and "test" for toy_pets).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown stand-in dataset {name!r}: choose one of {', '.join(DATASETS)}")
    dest = pathlib.Path(dest)
    marker = dest / MARKER
    wanted = {"name": name, "count": count, "seed": seed}
    if marker.exists() and {k: v for k, v in json.loads(marker.read_text()).items() if k in wanted} == wanted:
        return json.loads(marker.read_text())["counts"]
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} already holds files that are not this stand-in ({name}, {count} images, seed "
                         f"{seed}); choose an empty folder, or move the old one away yourself")
    drawing = dest.with_name(f".drawing-{dest.name}")  # renamed to `dest` once complete: never half a stand-in
    shutil.rmtree(drawing, ignore_errors=True)  # the kit's own, left by an interrupted drawing: drawn afresh
    if name == "toy_pets":
        counts = toy_pets(drawing, count, seed, progress=progress)
    else:
        images, labels = toy_birds(count, seed, progress=progress)
        drawing.mkdir(parents=True)
        np.savez_compressed(drawing / "birds.npz", x=images, y=labels, class_names=np.array(BIRD_CLASS_NAMES))
        counts = {class_name: int((labels == index).sum()) for index, class_name in enumerate(BIRD_CLASS_NAMES)}
    (drawing / MARKER).write_text(json.dumps({**wanted, "counts": counts}, indent=1))
    if dest.exists():
        dest.rmdir()  # empty (checked above)
    drawing.rename(dest)
    return counts
