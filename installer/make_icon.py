"""Draws installer/autoglm-studio.png, the raster twin of autoglm-studio.svg, for .desktop entries and Windows.

Pillow (a matplotlib dependency) draws the same shapes as the SVG, so no SVG rasteriser is needed at build
time; run it again after changing the SVG.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
HERE = Path(__file__).resolve().parent
LINE = [(32, 184), (80, 184), (104, 96), (136, 200), (160, 128), (184, 152), (224, 152)]


def draw_icon(path: Path = HERE / "autoglm-studio.png") -> Path:
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((8, 8, 248, 248), radius=40, fill="#1f2a3c")
    draw.line(LINE, fill="#4fc3f7", width=16, joint="curve")
    for x, y in (LINE[0], LINE[-1]):
        draw.ellipse((x - 8, y - 8, x + 8, y + 8), fill="#4fc3f7")
    draw.ellipse((168, 36, 224, 92), fill="#ffb74d")
    image.save(path, optimize=True)
    return path


if __name__ == "__main__":
    print(draw_icon())
