"""Digits split and MNIST readers, on tiny IDX/npz files written here with value-tagged pixels."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from rlkit.digits.datasets import MNIST_FILES, load_digits, load_mnist, read_idx, stratified_split
from rlkit.errors import RlkitError


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: 0, 0, type 0x08, ndim, big-endian sizes, then the bytes."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def tagged_images(n: int, offset: int = 0) -> np.ndarray:
    """Image i is filled with offset + i, so a mixed-up order or split shows as a wrong number."""
    return np.broadcast_to(np.arange(offset, offset + n, dtype=np.uint8)[:, None, None], (n, 4, 3)).copy()


def write_mnist(folder: Path, *, gz: bool, n_train: int = 5, n_test: int = 3) -> None:
    arrays = {
        "train": (tagged_images(n_train), np.arange(n_train, dtype=np.uint8) % 10),
        "test": (tagged_images(n_test, offset=100), (np.arange(n_test, dtype=np.uint8) + 7) % 10),
    }
    for split, (images_name, labels_name) in MNIST_FILES.items():
        for name, array in zip((images_name, labels_name), arrays[split], strict=True):
            data = idx_bytes(array)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_raw_and_gzipped(tmp_path: Path, gz: bool) -> None:
    images = tagged_images(6)
    path = tmp_path / ("x.gz" if gz else "x")
    path.write_bytes(gzip.compress(idx_bytes(images)) if gz else idx_bytes(images))
    loaded = read_idx(path)
    assert loaded.shape == (6, 4, 3)
    assert loaded[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert np.array_equal(loaded, images)
    assert loaded.flags.writeable  # torch.as_tensor warns on read-only buffers


def test_read_idx_refuses_a_corrupt_header(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(RlkitError, match=r"train-images-idx3-ubyte is not an IDX file.*header 12340803"):
        read_idx(path)


def test_read_idx_refuses_a_truncated_body(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8))[:-3])
    with pytest.raises(RlkitError, match=r"holds 7 data bytes but its header \(10,\) says 10"):
        read_idx(path)


def test_read_idx_refuses_a_file_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(idx_bytes(np.arange(3, dtype=np.uint8)))  # raw bytes behind a .gz name
    with pytest.raises(RlkitError, match="train-labels-idx1-ubyte.gz could not be read"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_the_four_idx_files(tmp_path: Path, gz: bool) -> None:
    write_mnist(tmp_path, gz=gz)
    data = load_mnist(path=tmp_path)
    assert data.x_train.shape == (5, 1, 4, 3) and data.x_test.shape == (3, 1, 4, 3)
    assert data.image_shape == (1, 4, 3)
    assert data.x_train[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert data.x_test[:, 0, 2, 1].tolist() == [100, 101, 102]
    assert data.y_train.tolist() == [0, 1, 2, 3, 4] and data.y_train.dtype == np.int64
    assert data.y_test.tolist() == [7, 8, 9]


def test_load_mnist_accepts_the_dotted_mirror_spelling(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    for path in tmp_path.iterdir():
        path.rename(tmp_path / path.name.replace("-idx", ".idx"))  # train-images.idx3-ubyte
    assert load_mnist(path=tmp_path).x_test[:, 0, 0, 0].tolist() == [100, 101, 102]


def test_load_mnist_names_the_missing_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(RlkitError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\] \(or put mnist\.npz there\)") as info:
        load_mnist(path=tmp_path)
    assert "train-images" not in str(info.value)  # only what is missing is named


def test_load_mnist_without_a_path_names_the_setting_and_files() -> None:
    with pytest.raises(RlkitError, match=r"data.path=<folder with train-images-idx3-ubyte\[\.gz\].*mnist\.npz"):
        load_mnist(path=None)


def test_load_mnist_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RlkitError, match="is neither a folder nor an .npz file"):
        load_mnist(path=tmp_path / "nowhere")


def test_load_mnist_refuses_image_and_label_counts_that_differ(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(4, dtype=np.uint8)))
    with pytest.raises(RlkitError, match=r"train images have shape \(5, 4, 3\) and labels \(4,\)"):
        load_mnist(path=tmp_path)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("as_folder", [False, True])
def test_load_mnist_reads_an_npz_file_or_a_folder_holding_mnist_npz(tmp_path: Path, as_folder: bool) -> None:
    path = tmp_path / "mnist.npz"
    save_npz(path, x_train=tagged_images(4), y_train=np.arange(4), x_test=tagged_images(2, offset=50),
        y_test=np.array([9, 8]))
    data = load_mnist(path=tmp_path if as_folder else path)
    assert data.x_train.shape == (4, 1, 4, 3)
    assert data.x_test[:, 0, 1, 1].tolist() == [50, 51]
    assert data.y_test.tolist() == [9, 8]


def test_load_mnist_npz_names_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    save_npz(path, x_train=tagged_images(2), y_train=np.arange(2))
    with pytest.raises(RlkitError, match=r"lacks x_test, y_test; an MNIST .npz needs x_train, y_train, x_test, y_test"):
        load_mnist(path=path)


def test_load_mnist_npz_refuses_a_corrupt_archive(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RlkitError, match="is not a readable .npz"):
        load_mnist(path=path)


def test_stratified_split_keeps_class_shares_and_covers_every_index_once() -> None:
    labels = np.repeat(np.arange(3), [8, 4, 20])
    train, test = stratified_split(labels, test_fraction=0.25, seed=0)
    assert np.bincount(labels[test]).tolist() == [2, 1, 5]
    assert np.bincount(labels[train]).tolist() == [6, 3, 15]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(32))


def test_stratified_split_depends_on_the_seed_only() -> None:
    labels = np.arange(200) % 10
    first = stratified_split(labels, test_fraction=0.2, seed=3)
    again = stratified_split(labels, test_fraction=0.2, seed=3)
    other = stratified_split(labels, test_fraction=0.2, seed=4)
    assert np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_stratified_split_refuses_fractions_outside_zero_one() -> None:
    with pytest.raises(RlkitError, match="test_fraction must lie strictly between 0 and 1, got 1.0"):
        stratified_split(np.arange(10), test_fraction=1.0, seed=0)


def test_digits_split_is_fixed_and_stratified() -> None:
    first, again = load_digits(), load_digits()
    assert first.x_train.shape == (1347, 1, 8, 8) and first.x_test.shape == (450, 1, 8, 8)
    assert first.x_train.dtype == np.uint8 and int(first.x_train.max()) == 16
    assert np.array_equal(first.x_test, again.x_test) and np.array_equal(first.y_train, again.y_train)
    assert np.bincount(first.y_test).min() >= 44 and np.bincount(first.y_test).max() <= 46
    reseeded = load_digits(seed=1)
    assert not np.array_equal(first.x_test, reseeded.x_test)
