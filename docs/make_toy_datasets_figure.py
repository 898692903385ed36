"""Draws docs/toy_datasets.png: a contact sheet of the two stand-in datasets.

Run from the kit's root folder: `.venv/bin/python docs/make_toy_datasets_figure.py`.
"""

import pathlib
import tempfile

import numpy as np
from PIL import Image, ImageDraw

from utils import synth

OUT = pathlib.Path(__file__).resolve().parent / "toy_datasets.png"
CELL = 150


def main():
    sheet = Image.new("RGB", (8 * CELL, 4 * CELL + 3 * 48 + 30), "white")
    draw = ImageDraw.Draw(sheet)
    with tempfile.TemporaryDirectory() as folder:
        synth.toy_pets(folder, 16, seed=0, test_count=0, progress=False)
        names = [f"cat.{i}.jpg" for i in range(8)] + [f"dog.{i}.jpg" for i in range(8)]
        for index, name in enumerate(names):
            image = Image.open(pathlib.Path(folder, "train", name))
            image.thumbnail((CELL - 6, CELL - 18))
            x, y = (index % 8) * CELL, (index // 8) * CELL + 20
            sheet.paste(image, (x + 3, y + 14))
            draw.text((x + 4, y + 1), f"{name} {Image.open(pathlib.Path(folder, 'train', name)).size}", fill="black")
    draw.text((4, 4), "toy_pets (shown shrunk; real sizes in brackets): top row cats, second row dogs", fill="black")
    images, labels = synth.toy_birds(48, seed=0, progress=False)
    top = 2 * CELL + 40
    draw.text((4, top), "toy_birds at 32x32, shown 2x; red frame = bird (label 1)", fill="black")
    for index in range(48):
        x, y = (index % 16) * 75 + 3, top + 18 + (index // 16) * 72
        sheet.paste(Image.fromarray(images[index]).resize((64, 64), Image.NEAREST), (x + 4, y))
        draw.rectangle([x + 2, y - 2, x + 69, y + 65], outline="red" if labels[index] else "white", width=2)
    sheet = sheet.crop((0, 0, sheet.width, top + 18 + 3 * 72))
    sheet.quantize(256, dither=Image.Dither.NONE).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
