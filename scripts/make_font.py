#!/usr/bin/env python3
"""Writes src/font.rs: Pillow's built-in bitmap font (`ImageFont.load_default_imagefont()`,
monospace 6 x 11, under Pillow's HPND licence) as row bitmasks for printable ASCII,
so that `vitrine explain` can label its pictures without a font dependency."""
import pathlib

from PIL import Image, ImageDraw, ImageFont

font = ImageFont.load_default_imagefont()
rows = []
for c in range(32, 127):
    img = Image.new("1", (6, 11), 0)
    ImageDraw.Draw(img).text((0, 0), chr(c), font=font, fill=1)
    masks = [sum(1 << (5 - x) for x in range(6) if img.getpixel((x, y))) for y in range(11)]
    rows.append(f"    [{', '.join(f'0x{m:02x}' for m in masks)}], // {chr(c)!r}")
out = pathlib.Path(__file__).resolve().parent.parent / "src" / "font.rs"
out.write_text(
    "//! A 6 x 11 monospace bitmap font for printable ASCII (Pillow's built-in bitmap font, HPND\n"
    "//! licence), written by scripts/make_font.py: labels on the pictures\n"
    "//! `vitrine explain` draws, without a font dependency.\n\n"
    "/// Glyph width and height in pixels.\n"
    "pub const SIZE: (usize, usize) = (6, 11);\n\n"
    "/// Rows of each glyph, top first; bit 5 is the leftmost pixel. Index: char code - 32.\n"
    "pub const GLYPHS: [[u8; 11]; 95] = [\n" + "\n".join(rows) + "\n];\n\n"
    "/// The glyph of `c` (`?` for characters outside printable ASCII).\n"
    "pub fn glyph(c: char) -> &'static [u8; 11] {\n"
    "    let i = (c as usize).wrapping_sub(32);\n"
    "    GLYPHS.get(i).unwrap_or(&GLYPHS['?' as usize - 32])\n"
    "}\n"
)
print(f"wrote {out}")
