"""Image classification data: scikit-learn's bundled 8x8 digits, and MNIST from local IDX or .npz files."""

from __future__ import annotations

import gzip
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlkit.errors import RlkitError

# IDX header: two zero bytes, a type code (0x08 = unsigned byte), then the number of dimensions.
IDX_UBYTE = 0x08
MNIST_FILES = {  # split -> (images, labels), as published by LeCun et al.
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_NPZ = "mnist.npz"  # the layout Keras downloads: x_train, y_train, x_test, y_test
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
N_CLASSES = 10


@dataclass(frozen=True)
class ImageDataset:
    """uint8 images shaped (N, C, H, W) and int64 labels; scaling to [0, 1] is the model's input module."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = N_CLASSES

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]  # always 3 dims


def stratified_split(labels: np.ndarray, *, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices holding each class in the same proportion; same seed, same split."""
    if not 0.0 < test_fraction < 1.0:
        raise RlkitError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(np.flatnonzero(labels == label)) for label in np.unique(labels)]
    test_idx = np.sort(np.concatenate([members[: int(round(test_fraction * members.size))] for members in by_class]))
    return np.setdiff1d(np.arange(labels.size), test_idx), test_idx


def load_digits(*, test_fraction: float = 0.25, seed: int = 0) -> ImageDataset:
    """scikit-learn's 1,797 bundled 8x8 digits (grey levels 0..16), split once with a fixed seed."""
    from sklearn.datasets import load_digits as sklearn_digits  # slow import: only for this data set

    bunch = sklearn_digits()
    images = bunch.images.astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, test_fraction=test_fraction, seed=seed)
    return ImageDataset("digits", images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (gzipped when its name ends in .gz) into a uint8 array of the stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise RlkitError(f"{path} could not be read ({exc}); download the file again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != IDX_UBYTE or raw[3] == 0:
        raise RlkitError(
            f"{path} is not an IDX file of unsigned bytes (header {raw[:4].hex() or 'empty'}, expected "
            f"0000080N); download the MNIST files again or pass the .npz instead"
        )
    ndim = raw[3]
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise RlkitError(f"{path} ends inside its header; the file is truncated")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape)  # exact: np.prod would overflow int64 on a header of huge sizes and could match
    if len(raw) - header_bytes != expected:
        raise RlkitError(f"{path} holds {len(raw) - header_bytes} data bytes but its header {shape} says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(shape).copy()  # writable, for torch


def _find_idx(folder: Path, stem: str) -> Path | None:
    """The file for stem, raw or gzipped, also under the `train-images.idx3-ubyte` spelling some mirrors use."""
    candidates = (folder / f"{name}{gz}" for name in (stem, stem.replace("-idx", ".idx")) for gz in ("", ".gz"))
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _checked(arrays: dict[str, np.ndarray], where: Path) -> ImageDataset:
    """MNIST from the NPZ_KEYS arrays: (N, 1, H, W) uint8 images and int64 labels, refusing bad counts or shapes."""
    splits: list[np.ndarray] = []
    for name in ("train", "test"):
        images, labels = arrays[f"x_{name}"], arrays[f"y_{name}"]
        integer = np.issubdtype(labels.dtype, np.integer)
        problem = ""
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            shapes = f"images have shape {images.shape} and labels {labels.shape}"
            problem = f"{shapes}; expected (N, H, W) images and N labels"
        elif images.dtype != np.uint8:
            problem = f"images are {images.dtype}; expected uint8 grey levels 0..255"
        elif labels.size and not (integer and 0 <= labels.min() and labels.max() < N_CLASSES):
            problem = f"labels run from {labels.min()} to {labels.max()}; MNIST labels are digits 0..{N_CLASSES - 1}"
        if problem:
            raise RlkitError(f"{where}: {name} {problem}")
        splits += [images[:, None], labels.astype(np.int64)]
    return ImageDataset("mnist", *splits)


def _load_npz(path: Path) -> ImageDataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise RlkitError(f"{path} lacks {', '.join(missing)}; an MNIST .npz needs {', '.join(NPZ_KEYS)}")
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # not an archive, or object arrays (need pickle)
        raise RlkitError(f"{path} is not a readable .npz of plain arrays ({exc})") from exc
    return _checked(arrays, path)


def load_mnist(*, path: str | Path | None) -> ImageDataset:
    """MNIST from a folder with the four IDX files (.gz or raw), a folder with mnist.npz, or an .npz file."""
    expected = ", ".join(f"{name}[.gz]" for pair in MNIST_FILES.values() for name in pair)
    if path is None:
        raise RlkitError(f"data=mnist needs data.path=<folder with {expected}, or {MNIST_NPZ}>")
    where = Path(path).expanduser()
    if where.is_file() and where.suffix == ".npz":
        return _load_npz(where)
    if not where.is_dir():
        raise RlkitError(f"data.path={path} is neither a folder nor an .npz file")
    found = {stem: _find_idx(where, stem) for pair in MNIST_FILES.values() for stem in pair}
    missing = [stem for stem, file in found.items() if file is None]
    if not missing:  # MNIST_FILES lists the files in NPZ_KEYS order
        return _checked(dict(zip(NPZ_KEYS, map(read_idx, found.values()), strict=True)), where)
    if (where / MNIST_NPZ).is_file():
        return _load_npz(where / MNIST_NPZ)
    names = ", ".join(f"{stem}[.gz]" for stem in missing)
    raise RlkitError(f"{where} has no MNIST files: missing {names} (or put {MNIST_NPZ} there)")
