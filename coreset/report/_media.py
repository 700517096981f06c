"""What a report shows of a row besides its embedding: an image (a folder with
one image file per row, an array of images, or a ``.npy`` of them) or a
sentence (a ``.txt``, ``.csv`` or ``.parquet`` file), and the small PNG
thumbnails the page inlines as base64.

The rules follow ``coreset embed``, so a folder embedded by it lines up with
its rows: image files are the folder's files ending in one of
:data:`IMAGE_SUFFIXES`, in sorted name order (zero-pad numbered names); a
``.txt`` holds one sentence per non-empty line.
"""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import numpy as np

from ..exceptions import InputFileError, ValidationError

__all__ = ["IMAGE_SUFFIXES", "TEXT_SUFFIXES", "ImageSource", "TextSource", "png_bytes", "png_data_uri",
           "to_uint8_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".npy")
TEXT_SUFFIXES = (".txt", ".csv", ".parquet", ".pq")
THUMB = 64  # largest side of a thumbnail, pixels


def _err(path, what) -> InputFileError:
    return InputFileError(f"{str(path)!r}: {what}")


def png_bytes(img: np.ndarray) -> bytes:
    """A PNG file of a uint8 image: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA."""
    a = np.ascontiguousarray(img, dtype=np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    colour = 0 if a.ndim == 2 else {3: 2, 4: 6}.get(a.shape[2]) if a.ndim == 3 else None
    if colour is None or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValidationError(f"an image must be (H, W), (H, W, 3) or (H, W, 4) with H, W >= 1; got {a.shape}")
    h, w = a.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), a.reshape(h, -1)], axis=1).tobytes()  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def png_data_uri(img: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(img)).decode("ascii")


def to_uint8_image(a, *, size: int = THUMB) -> np.ndarray:
    """An image array as uint8 (H, W) or (H, W, C), at most ``size`` pixels a
    side (block-averaged down). uint8 stays as it is; other numbers in [0, 1]
    scale by 255, anything else is stretched from its min to its max. (C, H, W)
    with C in 1, 3, 4 is moved to the end."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValidationError(f"an image must be (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4; got {a.shape}")
    if a.dtype != np.uint8:
        f = a.astype(np.float64)
        if not np.all(np.isfinite(f)):
            f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(f.min()), float(f.max())
        if lo < 0 or hi > 1:
            f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
        a = np.rint(f * 255).astype(np.uint8)
    step = -(-max(a.shape[:2]) // size)  # ceil: the block side that brings the image under size
    if step > 1:
        h, w = (a.shape[0] // step) * step, (a.shape[1] // step) * step
        b = a[:h, :w].astype(np.float32)
        b = b.reshape(h // step, step, w // step, step, *a.shape[2:]).mean(axis=(1, 3))
        a = np.rint(b).astype(np.uint8)
    return a


class ImageSource:
    """Images, one per row: a folder of image files, a ``.npy`` of images
    (N, H, W[, C]) or (N, C, H, W), or an array of them. ``len`` is checked
    against the number of rows by :meth:`check_rows`."""

    def __init__(self, source, *, param: str = "images"):
        self.param = param
        self.files = self.array = None
        if isinstance(source, (str, Path)):
            p = Path(source)
            if p.is_dir():
                self.files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
                self.path = p
            elif p.is_file() and p.suffix.lower() == ".npy":
                try:
                    self.array = np.load(p, mmap_mode="r", allow_pickle=False)
                except Exception as exc:
                    raise _err(p, f"{param}: not a readable .npy of images ({type(exc).__name__}: {exc})") from None
                self.path = p
            elif not p.exists():
                raise _err(p, f"{param}: no such file or folder")
            else:
                raise _err(p, f"{param} must be a folder of images ({', '.join(IMAGE_SUFFIXES)}) or a .npy "
                              f"of images; got a {p.suffix or 'file without suffix'}")
        else:
            self.array, self.path = np.asarray(source), None
        if self.array is not None:
            a = self.array
            ok = a.ndim == 3 or (a.ndim == 4 and (a.shape[3] in (1, 3, 4) or a.shape[1] in (1, 3, 4)))
            if not ok or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
                raise ValidationError(f"{param} must hold images (N, H, W), (N, H, W, C) or (N, C, H, W) of "
                                      f"numbers; got shape {a.shape}, dtype {a.dtype}")

    def __len__(self) -> int:
        return len(self.files) if self.files is not None else int(self.array.shape[0])

    def check_rows(self, n_rows: int) -> None:
        n = len(self)
        if n != n_rows:
            where = (f"the folder {str(self.path)!r} holds {n} image files ({', '.join(IMAGE_SUFFIXES)})"
                     if self.files is not None else f"it holds {n} images")
            raise ValidationError(f"{self.param} must hold one image per row of the embeddings ({n_rows} rows, "
                                  f"in sorted name order); {where}")

    def thumbnail(self, row: int) -> str:
        """The row's image as a PNG data URI, at most THUMB pixels a side."""
        if self.array is not None:
            return png_data_uri(to_uint8_image(np.asarray(self.array[row])))
        f = self.files[row]
        if f.suffix.lower() == ".npy":
            try:
                a = np.load(f, allow_pickle=False)
            except Exception as exc:
                raise _err(f, f"not a readable .npy image ({type(exc).__name__})") from None
            return png_data_uri(to_uint8_image(a))
        try:
            from PIL import Image
        except ImportError:
            raise _err(f, "reading PNG/JPEG images needs Pillow: pip install pillow "
                          "(or give a .npy of images)") from None
        try:
            with Image.open(f) as im:
                im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB")
                im.thumbnail((THUMB, THUMB))
                a = np.asarray(im)
        except Exception as exc:
            raise _err(f, f"not a readable image ({type(exc).__name__}: {exc})") from None
        return png_data_uri(a)


class TextSource:
    """Sentences, one per row: a ``.txt`` (one per non-empty line), a ``.csv``
    (header row) or ``.parquet`` column, or a sequence of strings."""

    def __init__(self, source, column=None, *, param: str = "text"):
        self.param = param
        if not isinstance(source, (str, Path)):
            self.texts = [str(t) for t in source]
            return
        p = Path(source)
        if not p.is_file():
            raise _err(p, f"{param}: no such file")
        suffix = p.suffix.lower()
        if suffix not in TEXT_SUFFIXES:
            raise _err(p, f"{param} must be a .txt, .csv or .parquet file; got {suffix or 'no suffix'!r}")
        if suffix == ".txt":
            if column is not None:
                raise ValidationError(f"column applies to a .csv or .parquet {param} file; got column={column!r} "
                                      f"with {p.name!r}")
            try:
                lines = p.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise _err(p, f"cannot be read as UTF-8 text ({exc})") from None
            self.texts = [ln.strip() for ln in lines if ln.strip()]
        elif suffix == ".csv":
            import csv

            try:
                with open(p, newline="", encoding="utf-8") as fh:
                    rows = list(csv.DictReader(fh))
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise _err(p, f"cannot be read as CSV ({exc})") from None
            col = _column(p, list(rows[0]) if rows else [], column)
            self.texts = [r[col] or "" for r in rows]
        else:
            try:
                import pyarrow.parquet as pq

                table = pq.read_table(p)
            except Exception as exc:
                raise _err(p, f"cannot be read as parquet ({type(exc).__name__}: {exc})") from None
            col = _column(p, table.column_names, column)
            values = table.column(col).to_pylist()
            if any(v is not None and not isinstance(v, str) for v in values):
                raise _err(p, f"column {col!r} does not hold text")
            self.texts = [v or "" for v in values]
        self.path = p

    def __len__(self) -> int:
        return len(self.texts)

    def check_rows(self, n_rows: int) -> None:
        if len(self.texts) != n_rows:
            raise ValidationError(f"{self.param} must hold one sentence per row of the embeddings ({n_rows} rows); "
                                  f"it holds {len(self.texts)}")

    def text(self, row: int) -> str:
        return self.texts[row]


def _column(p, names, column):
    if column is not None:
        if column not in names:
            raise _err(p, f"has no column {column!r}; columns: {', '.join(names) or 'none'}")
        return column
    if len(names) == 1:
        return names[0]
    if "text" in names:
        return "text"
    raise _err(p, f"has {len(names)} columns ({', '.join(names)}); name the text one with column= (--column)")
