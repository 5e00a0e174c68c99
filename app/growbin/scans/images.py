"""What an uploaded file is, whether it is acceptable, and its normalised JPEG + thumbnail.

The type comes from the file's own bytes, never from the client's Content-Type. Dimensions
are read from the header before anything is decoded, so a decompression bomb is refused
without allocating its pixels. Normalisation decodes fully (a truncated file fails here),
applies the EXIF orientation and writes fresh JPEGs without any metadata (no GPS, no camera
serial numbers).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Formats by their leading bytes; HEIC is not decodable by Pillow without a plugin, so it is
# named in the error instead of being sniffed as "not an image".
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"WEBP", 8, "webp"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
)
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
ACCEPTED_CONTENT_TYPES = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
}
JPEG_QUALITY = 85
THUMBNAIL_QUALITY = 80


class ImageRejected(ValueError):
    """The file cannot become a scan; ``code`` and the message are shown to the user."""

    def __init__(self, code: str, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class NormalizedImage:
    jpeg: bytes
    thumbnail: bytes
    width: int
    height: int


def sniff(data: bytes) -> str:
    if not data:
        raise ImageRejected("empty_image", "The file is empty (0 bytes).")
    for signature, offset, name in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            if name == "webp" and not data.startswith(b"RIFF"):
                continue
            return name
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        raise ImageRejected(
            "unsupported_image_type",
            "HEIC photos are not supported; send JPEG, PNG or WebP.",
            415,
        )
    raise ImageRejected(
        "not_an_image", "The file is not a JPEG, PNG or WebP image.", status_code=415
    )


def _complete(data: bytes, kind: str) -> bool:
    """Cheap end-of-file checks that catch truncated uploads before any decoding."""
    if kind == "jpeg":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if kind == "png":
        return data.endswith(b"IEND\xaeB`\x82")
    if kind == "webp":
        if len(data) < 12:
            return False
        (riff_size,) = struct.unpack("<I", data[4:8])
        return len(data) >= riff_size + 8
    return True


def inspect(data: bytes, max_pixels: int) -> ImageInfo:
    """Type, dimensions and completeness from the bytes, without decoding the pixels."""
    kind = sniff(data)
    if kind == "gif":
        raise ImageRejected(
            "unsupported_image_type", "GIF is not supported; send JPEG, PNG or WebP.", 415
        )
    if not _complete(data, kind):
        raise ImageRejected("truncated_image", "The image file is truncated or incomplete.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[kind]]) as image:
                width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("corrupt_image", "The image header cannot be read.") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("image_too_large", "The image has too many pixels.") from exc
    if width < 1 or height < 1:
        raise ImageRejected("corrupt_image", "The image has no pixels.")
    if width * height > max_pixels:
        raise ImageRejected(
            "image_too_large",
            f"The image has {width * height / 1e6:.1f} megapixels; the limit is "
            f"{max_pixels / 1e6:.0f}.",
        )
    return ImageInfo(kind, width, height)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def normalize(data: bytes, max_pixels: int, max_side: int, thumbnail_side: int) -> NormalizedImage:
    info = inspect(data, max_pixels)
    try:
        with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[info.format]]) as source:
            source.load()
            # Rotate by the EXIF orientation before the metadata is dropped.
            upright = ImageOps.exif_transpose(source)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(
            "corrupt_image", "The image data is damaged or truncated and cannot be decoded."
        ) from exc
    if upright.mode in ("RGBA", "LA", "P"):
        rgba = upright.convert("RGBA")
        flattened = Image.new("RGB", rgba.size, (255, 255, 255))
        flattened.paste(rgba, mask=rgba.getchannel("A"))
        upright = flattened
    else:
        upright = upright.convert("RGB")
    # A new image from the pixels alone: no EXIF, ICC, XMP or comments survive.
    clean = Image.frombytes("RGB", upright.size, upright.tobytes())
    clean.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    thumbnail = clean.copy()
    thumbnail.thumbnail((thumbnail_side, thumbnail_side), Image.Resampling.LANCZOS)
    return NormalizedImage(
        jpeg=_jpeg(clean, JPEG_QUALITY),
        thumbnail=_jpeg(thumbnail, THUMBNAIL_QUALITY),
        width=clean.width,
        height=clean.height,
    )
