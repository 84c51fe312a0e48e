"""Write `shapes` images as a user's image folders would be: a zip of class folders of PNG files
(circle/0.png, square/1.png, ...), to upload to POST /v1/datasets. The same seed writes the same images.
Run: `python examples/shapes_zip.py shapes.zip [--n 600] [--seed 0]`
"""

from __future__ import annotations

import argparse
import io
import zipfile

import numpy as np
from PIL import Image

from core.spec.catalog import CATALOG, Draw


def main() -> None:
    parser = argparse.ArgumentParser(description="Write shapes images as a zip of class folders of PNGs.")
    parser.add_argument("out", help="The zip file to write.")
    parser.add_argument("--n", type=int, default=600, help="How many images (default 600).")
    parser.add_argument("--seed", type=int, default=0, help="Which images (default 0).")
    parser.add_argument("--flat", action="store_true", help="No class folders: images to predict.")
    args = parser.parse_args()
    loaded = CATALOG["shapes"].loader(Draw(rows=args.n, features=0, classes=3, noise=0.05, seed=args.seed))
    with zipfile.ZipFile(args.out, "w") as archive:
        for i, (pixels, label) in enumerate(zip(loaded.x, loaded.y, strict=True)):
            image = (pixels.reshape(3, 32, 32).transpose(1, 2, 0) * 255).round().astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "PNG")
            folder = "" if args.flat else f"{loaded.class_names[label]}/"
            archive.writestr(f"{folder}{i}.png", buffer.getvalue())
    print(f"{args.n} images in {args.out}")


if __name__ == "__main__":
    main()
