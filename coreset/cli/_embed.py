"""``coreset embed``: images, sentences or tensors in, an embeddings file out,
so ``coreset embed ... && coreset select ...`` is the whole CLI pipeline.

Large inputs are checkpointed: every ``--checkpoint-every`` rows the new rows
are written (atomically) as one chunk file into ``OUTPUT.partial/``, beside a
``state.json`` naming the input (a file: size, mtime, sha256 of sampled bytes;
a folder: its file names), the backbone (a name; a weights file: the sha256 of
all its bytes) and options. Re-running the same command resumes after the last
chunk; a different input, backbone content or option starts over (a warning
names what changed). The folder is removed once the output
is written.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ._common import check_output_target, cli_errors, fail, jsonable, logging_to_stderr, stderr_console, stdout_console
from ._options import DebugFlag, JsonFlag, QuietFlag
from ._progress import ProgressReporter

__all__ = ["embed_command", "read_embed_input"]

log = logging.getLogger("coreset.cli.embed")

_IN, _RUN, _OUT = "Input", "Backbone", "Output"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".npy")
TEXT_SUFFIXES = (".txt", ".csv", ".parquet", ".pq")
TENSOR_SUFFIXES = (".pt", ".pth", ".npy")
OUTPUT_SUFFIXES = (".npy", ".parquet")


def _err(path, what):
    from ..exceptions import InputFileError

    return InputFileError(f"{str(path)!r}: {what}")


def _read_image(p: Path, size):
    if p.suffix.lower() == ".npy":
        try:
            a = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise _err(p, f"not a readable .npy image ({type(exc).__name__})") from None
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            raise _err(p, f"holds {a.dtype}, not numbers")
        a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
        a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0) if a.ndim == 3 and a.shape[-1] in (1, 3, 4) else a
    else:
        try:
            from PIL import Image
        except ImportError:
            raise _err(p, "reading PNG/JPEG needs Pillow: pip install pillow (or store images as .npy)") from None
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                if size:
                    im = im.resize((size, size))
                a = np.asarray(im, dtype=np.float32) / 255.0
        except Exception as exc:
            raise _err(p, f"not a readable image ({type(exc).__name__}: {exc})") from None
        a = np.moveaxis(a, -1, 0)
    if a.ndim != 3:
        raise _err(p, f"an image must be (H, W) or (H, W, C) or (C, H, W); got shape {a.shape}")
    return a


class _Images:
    """A folder of images, read lazily batch by batch (a map-style dataset)."""

    def __init__(self, folder: Path, size):
        self.files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise _err(folder, f"holds no images ({', '.join(IMAGE_SUFFIXES)})")
        self.size = size
        self.shape = _read_image(self.files[0], size).shape

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        a = _read_image(self.files[i], self.size)
        if a.shape != self.shape:
            raise _err(self.files[i], f"has shape {a.shape} but the first image has {self.shape}; "
                                      "give --image-size to resize them all")
        return a


def _texts(p: Path, column):
    suffix = p.suffix.lower()
    if suffix == ".txt":
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise _err(p, f"cannot be read as UTF-8 text ({exc})") from None
        return [ln.strip() for ln in lines if ln.strip()]
    if suffix == ".csv":
        import csv

        try:
            with open(p, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise _err(p, f"cannot be read as CSV ({exc})") from None
        names = list(rows[0]) if rows else []
        col = _column(p, names, column)
        return [r[col] or "" for r in rows]
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(p)
    except Exception as exc:
        raise _err(p, f"cannot be read as parquet ({type(exc).__name__}: {exc})") from None
    col = _column(p, table.column_names, column)
    values = table.column(col).to_pylist()
    if any(v is not None and not isinstance(v, str) for v in values):
        raise _err(p, f"column {col!r} does not hold text")
    return [v or "" for v in values]


def _column(p, names, column):
    if column is not None:
        if column not in names:
            raise _err(p, f"has no column {column!r}; columns: {', '.join(names) or 'none'}")
        return column
    if len(names) == 1:
        return names[0]
    if "text" in names:
        return "text"
    raise _err(p, f"has {len(names)} columns ({', '.join(names)}); name the text one with --column")


def _tensor(p: Path, column):
    from ..data._readers import read_embeddings

    if p.suffix.lower() == ".npy":
        try:
            a = np.load(p, allow_pickle=False, mmap_mode="r")
        except Exception as exc:
            raise _err(p, f"not a readable .npy array ({type(exc).__name__}: {exc})") from None
        return a
    X, _ = read_embeddings(p, column=column) if p.suffix.lower() != ".pt" or column else (None, None)
    if X is not None:
        return X
    import torch

    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _err(p, f"not a readable tensor file (pickled objects are refused): {type(exc).__name__}") from None
    if not torch.is_tensor(obj):
        raise _err(p, f"holds a {type(obj).__name__}; name the tensor with --column")
    return obj


def read_embed_input(path: Path, column=None, image_size=None):
    """``(data, kind)`` for ``coreset embed``: kind is images, text or tensor."""
    if not path.exists():
        raise _err(path, "no such file or folder")
    if path.is_dir():
        from ..data._hf import embed_input, is_dataset_dict_folder, is_dataset_folder, load_dataset_folder

        if is_dataset_folder(path) or is_dataset_dict_folder(path):  # a Hugging Face save_to_disk folder
            return embed_input(load_dataset_folder(path), column, image_size=image_size,
                               err=lambda msg: _err(path, msg))
        return _Images(path, image_size), "images"
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        texts = _texts(path, column)
        if not texts:
            raise _err(path, "holds no text")
        return texts, "text"
    if suffix in TENSOR_SUFFIXES:
        return _tensor(path, column), "tensor"
    raise _err(path, f"unsupported input {suffix or '(no suffix)'!r}: give a folder of images, "
                     f"{', '.join(TEXT_SUFFIXES)} (sentences) or {', '.join(TENSOR_SUFFIXES)} (tensors)")


def _backbone_key(backbone) -> str:
    """What the resume state records of the backbone: a name as given, a
    weights file by the sha256 of all its bytes (its content, not its name:
    a replaced file must not resume a checkpoint made with the old weights;
    the same file moved or renamed still does)."""
    from ..pipelines._backbones import SCRIPT_SUFFIXES

    name = str(backbone)
    if name.lower().endswith(SCRIPT_SUFFIXES) and Path(name).is_file():
        from ..data._fingerprint import file_sha256

        return "weights " + file_sha256(name)
    return name


def _state_key(input: Path, backbone, column, image_size, normalize, n):
    from ..data._fingerprint import file_sha256

    st = input.stat()
    if input.is_file():  # size, mtime and sampled bytes of the file (it need not hold embeddings)
        fp = file_sha256(input, sampled=True)
    else:  # a folder: its sorted file names (a file rewritten in place is not noticed)
        import hashlib

        names = "\n".join(sorted(f.name for f in input.iterdir()))
        if (input / "state.json").is_file() and (input / "dataset_info.json").is_file():
            names += "\n" + (input / "state.json").read_text()  # a Hugging Face dataset: its content hash
        fp = "names:" + hashlib.sha256(names.encode()).hexdigest()
    return {"input": str(input.resolve()), "size": st.st_size if input.is_file() else None,
            "mtime_ns": st.st_mtime_ns if input.is_file() else None, "fingerprint": fp,
            "backbone": _backbone_key(backbone), "column": column, "image_size": image_size,
            "normalize": bool(normalize),
            "n": int(n), "version": 1}


def _load_partial(folder: Path, key) -> list:
    """The chunks of a matching earlier run, contiguous from row 0."""
    state = folder / "state.json"
    if not state.is_file():  # no record of what the chunks are: never reuse them
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        return []
    try:
        old = json.loads(state.read_text())
    except (OSError, ValueError):
        old = None
    if old != key:
        what = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k)) if isinstance(old, dict) else []
        what = ["backbone weights (the file's content)" if k == "backbone" and str(key[k]).startswith("weights ")
                else k for k in what]
        log.warning("%s was written for a different %s; starting over", folder,
                    ", ".join(what) or "input or options")
        shutil.rmtree(folder, ignore_errors=True)
        return []
    chunks, row = [], 0
    for f in sorted(folder.glob("chunk-*.npy")):
        start = int(f.stem.split("-")[1])
        if start != row:
            break
        try:
            a = np.load(f, allow_pickle=False)
        except Exception:
            break
        chunks.append(a)
        row += a.shape[0]
    return chunks


def _save_chunk(folder: Path, start: int, block):
    from .._io import atomic_write

    with atomic_write(folder / f"chunk-{start:012d}.npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, block)


def _write_output(output: Path, X, labels):
    from .._io import atomic_write

    with atomic_write(output, param="--output") as tmp:
        if output.suffix.lower() == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, X)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            flat = pa.array(X.reshape(-1))
            cols = {"embedding": pa.FixedSizeListArray.from_arrays(flat, X.shape[1])}
            if labels is not None:
                cols["label"] = pa.array(labels)
            pq.write_table(pa.table(cols), tmp)


def embed_command(
    input: Annotated[Path, typer.Argument(
        metavar="INPUT", show_default=False,
        help="A folder of images (PNG/JPEG, or .npy arrays), a text file of sentences (.txt one per line, "
             ".csv or .parquet with --column), a tensor file (.pt / .npy), or a Hugging Face dataset folder "
             "(save_to_disk; --column names a text, Image or numeric column).")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", metavar="PATH", rich_help_panel=_OUT, show_default=False,
        help="Embeddings file to write (required): .npy or .parquet (column 'embedding').")] = ...,
    backbone: Annotated[str, typer.Option(
        "--backbone", "-b", metavar="NAME", rich_help_panel=_RUN,
        help="minilm (text, packaged, offline), timm:<name> (images, needs timm) or a TorchScript .pt path.")
    ] = "minilm",
    column: Annotated[Optional[str], typer.Option(
        "--column", metavar="NAME", rich_help_panel=_IN,
        help="Text column (.csv/.parquet; default: the only column or 'text') or tensor key (.pt).")] = None,
    labels_column: Annotated[Optional[str], typer.Option(
        "--labels-column", metavar="NAME", rich_help_panel=_IN,
        help="Column of labels (.csv/.parquet) copied to a .parquet output's 'label' column.")] = None,
    image_size: Annotated[Optional[int], typer.Option(
        "--image-size", metavar="PX", rich_help_panel=_IN, min=1,
        help="Resize images to PX x PX (needed when they differ in size).")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", metavar="INT", rich_help_panel=_RUN, min=1, help="Rows per backbone batch.")] = 64,
    device: Annotated[str, typer.Option(
        "--device", metavar="DEV", rich_help_panel=_RUN, help="auto, cpu, cuda or cuda:N.")] = "auto",
    normalize: Annotated[bool, typer.Option(
        "--normalize", rich_help_panel=_RUN, help="Scale every embedding to unit length.")] = False,
    checkpoint_every: Annotated[int, typer.Option(
        "--checkpoint-every", metavar="ROWS", rich_help_panel=_OUT, min=1,
        help="Save progress every ROWS rows to OUTPUT.partial/ (a rerun resumes from it).")] = 4096,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", rich_help_panel=_OUT, help="Replace an existing output file.")] = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
    debug: DebugFlag = False,
):
    """Embed images, sentences or tensors with a pretrained backbone into an embeddings file.

    The output feeds `coreset select` directly. Progress goes to stderr; the
    summary (rows, dimension, backbone, seconds) to stdout. Interrupted runs
    resume from OUTPUT.partial/ when the same command is run again.
    """
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise typer.BadParameter(f"the output must end in .npy or .parquet; got {output.suffix or 'no suffix'!r}",
                                 param_hint="'--output'")
    check_output_target(output, [("INPUT", input)], reserve=len(".partial"))  # OUTPUT.partial/ beside it
    err = stderr_console()
    with cli_errors(debug), logging_to_stderr(err, debug=debug, quiet=quiet):
        if output.exists() and not overwrite:
            fail(f"{str(output)!r} already exists; pass --overwrite to replace it")
        if labels_column is not None and output.suffix.lower() != ".parquet":
            fail("--labels-column needs a .parquet output (the labels go to its 'label' column); for a .npy output "
                 "pass the input file as `coreset select --labels INPUT --labels-column NAME`")
        t_wall = time.perf_counter()
        from ..pipelines._backbones import load_backbone
        from ..pipelines._transfer import iter_embed

        data, kind = read_embed_input(input, column, image_size)
        labels = _labels(input, labels_column) if labels_column is not None else None
        t0 = time.perf_counter()
        bb = load_backbone(backbone, device=device)
        if (bb.kind == "text") != (kind == "text"):
            from ..exceptions import ValidationError

            raise ValidationError(f"backbone {backbone!r} takes {'text' if bb.kind == 'text' else 'tensors/images'} "
                                  f"but INPUT holds {kind}")
        t_load = time.perf_counter() - t0
        n = len(data)
        partial = output.with_name(output.name + ".partial")
        key = _state_key(input, backbone, column, image_size, normalize, n)
        chunks = _load_partial(partial, key)
        done = sum(c.shape[0] for c in chunks)
        resumed = done
        if done:
            log.info("resuming after %d of %d rows from %s", done, n, partial)
        else:
            partial.mkdir(exist_ok=True)
            from .._io import atomic_write

            with atomic_write(partial / "state.json") as tmp:
                Path(tmp).write_text(json.dumps(key))
        reporter = ProgressReporter(err, enabled=not quiet and err.is_terminal)
        pending, t_embed = [], time.perf_counter()
        with reporter:
            reporter.callback("embed", done, n)
            for start, block in iter_embed(bb, data, batch_size=batch_size, start=done, normalize=normalize):
                pending.append(block)
                done = start + block.shape[0]
                if sum(b.shape[0] for b in pending) >= checkpoint_every or done == n:
                    merged = np.concatenate(pending)
                    _save_chunk(partial, done - merged.shape[0], merged)
                    chunks.append(merged)
                    pending = []
                reporter.callback("embed", done, n)
            X = np.concatenate(chunks).astype(np.float32, copy=False)
            t_embed = time.perf_counter() - t_embed
            with reporter.stage("write"):
                _write_output(output, X, labels)
        shutil.rmtree(partial, ignore_errors=True)
        wall = time.perf_counter() - t_wall
    summary = {"input": str(input), "kind": kind, "n_samples": int(X.shape[0]), "dim": int(X.shape[1]),
               "backbone": backbone, "resumed_rows": int(resumed), "output": str(output),
               "timings": {"load_backbone": t_load, "embed": t_embed, "total": wall}}
    if as_json:
        typer.echo(json.dumps(jsonable(summary)))
        return
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("input", f"{summary['input']} ({kind}, {summary['n_samples']} rows)")
    t.add_row("backbone", f"{backbone} -> {summary['dim']}-d")
    if resumed:
        t.add_row("resumed", f"after {resumed} rows")
    t.add_row("seconds", "  ".join(f"{k} {v:.3f}" for k, v in summary["timings"].items()))
    t.add_row("wrote", summary["output"])
    stdout_console().print(t)


def _labels(path: Path, column):
    from ..data._readers import read_labels

    from ..data._hf import is_dataset_folder

    if path.suffix.lower() not in (".csv", ".parquet", ".pq") and not is_dataset_folder(path):
        from ..exceptions import ValidationError

        raise ValidationError(f"--labels-column applies to a .csv or .parquet INPUT or a Hugging Face dataset "
                              f"folder; got {path.suffix!r}")
    return read_labels(path, column=column)
