"""Test images: real photos from scikit-image's bundled data, and hostile files."""

from __future__ import annotations

import io

from PIL import Image
from skimage import data

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def _jpeg(image: Image.Image, *, with_exif: bool) -> bytes:
    out = io.BytesIO()
    if with_exif:
        exif = Image.Exif()
        exif[ORIENTATION] = 1
        exif[0x010F] = "GrowbinTestCam"  # Make
        exif.get_ifd(GPS_IFD).update(
            {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 40.0)}
        )
        image.save(out, "JPEG", quality=90, exif=exif)
    else:
        image.save(out, "JPEG", quality=90)
    return out.getvalue()


def coffee_photo(*, with_exif: bool = True) -> bytes:
    """A cup of coffee on a saucer, with camera and GPS EXIF tags."""
    return _jpeg(Image.fromarray(data.coffee()), with_exif=with_exif)


def cat_photo() -> bytes:
    return _jpeg(Image.fromarray(data.chelsea()), with_exif=False)


def small_png(seed: int = 0) -> bytes:
    image = Image.new("RGB", (64, 48), (seed % 256, 120, 200))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def truncated_jpeg() -> bytes:
    photo = coffee_photo(with_exif=False)
    return photo[: len(photo) // 2]


def fifty_megapixel_png() -> bytes:
    # 8000 x 6250: one colour, so the file is small but decoding it would need 50 M pixels.
    out = io.BytesIO()
    Image.new("L", (8000, 6250), 0).save(out, "PNG")
    return out.getvalue()


def damaged_png() -> bytes:
    """A PNG whose header and end are intact but whose compressed pixels are zeroed."""
    noise = Image.frombytes("RGB", (200, 200), bytes((i * 7919) % 251 for i in range(120_000)))
    out = io.BytesIO()
    noise.save(out, "PNG")
    damaged = bytearray(out.getvalue())
    start = damaged.index(b"IDAT") + 100
    damaged[start : start + 300] = b"\x00" * 300
    return bytes(damaged)
