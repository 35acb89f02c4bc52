import gzip

import numpy as np
import pytest
from idx_files import write_dataset, write_idx

from gan_tf import data


def test_reads_what_was_written(fake_data):
    root, arrays = fake_data
    images, labels = data.load("mnist", "train", data_dir=root, download=False)
    assert images.shape == (300, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[..., 0], arrays["train"][0])
    np.testing.assert_array_equal(labels, arrays["train"][1])
    test_images, _ = data.load("mnist", "test", data_dir=root, download=False)
    assert len(test_images) == 50


def test_reads_uncompressed_files_and_name_spellings(tmp_path):
    arrays = write_dataset(tmp_path, "fashion-mnist", compress=False)
    for name in ("fashion_mnist", "fashion-mnist", "Fashion-MNIST"):
        images, labels = data.load(name, "train", data_dir=tmp_path, download=False)
        np.testing.assert_array_equal(labels, arrays["train"][1])


def test_lookup_order_argument_then_environment(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    write_dataset(first, n_train=30)
    write_dataset(second, n_train=40)
    monkeypatch.setenv(data.DATA_ENV, str(second))
    assert len(data.load("mnist", data_dir=first, download=False)[0]) == 30
    assert len(data.load("mnist", download=False)[0]) == 40


def test_nothing_found_names_every_searched_path(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    monkeypatch.setattr(data, "REPO_DATA_DIR", tmp_path / "repo")
    with pytest.raises(data.DataError) as err:
        data.load("mnist", download=False)
    message = str(err.value)
    for where in ("env", "repo"):
        assert str(tmp_path / where / "mnist") in message
    assert "GAN_TF_DATA_DIR" in message and "--data-dir" in message


@pytest.mark.parametrize("make_folder", [False, True])
def test_a_given_folder_is_the_only_one_searched(tmp_path, monkeypatch, make_folder):
    """A typo in data_dir must not silently train on the data that $GAN_TF_DATA_DIR holds."""
    write_dataset(tmp_path / "env")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    given = tmp_path / "typo"
    if make_folder:
        given.mkdir()
    reason = "has no mnist data" if make_folder else "does not exist"
    with pytest.raises(data.DataError, match=f"the data folder {given} {reason}"):
        data.load("mnist", data_dir=given)
    assert len(data.load("mnist", download=False)[0]) > 0  # the fall-back applies without data_dir


def test_failed_download_is_reported_not_raised_raw(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "REPO_DATA_DIR", tmp_path / "repo")

    def offline(name, split):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(data.DataError, match="download failed: OSError: Temporary failure"):
        data.load("mnist", download=True)


def _corrupt(path, transform):
    raw = gzip.open(path).read()
    with gzip.open(path, "wb") as f:
        f.write(transform(raw))


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-100], "truncated"),
    (lambda raw: raw + b"\0" * 7, "truncated or padded"),
    (lambda raw: b"\0\0\x08\x01" + raw[4:], "magic number"),
    (lambda raw: raw[:20], "truncated"),
    (lambda raw: raw[:3], "too short"),
])
def test_damaged_image_file_gives_clear_error(fake_data, damage, message):
    root, _ = fake_data
    path = root / "mnist" / "train-images-idx3-ubyte.gz"
    _corrupt(path, damage)
    with pytest.raises(data.DataError, match=message) as err:
        data.load("mnist", data_dir=root, download=False)
    assert str(path) in str(err.value)


def test_cut_gzip_stream(fake_data):
    root, _ = fake_data
    path = root / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])  # a download that stopped half way
    with pytest.raises(data.DataError, match="cannot be read"):
        data.load("mnist", data_dir=root, download=False)


def test_file_that_is_not_gzip(fake_data):
    root, _ = fake_data
    path = root / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(data.DataError, match="cannot be read"):
        data.load("mnist", data_dir=root, download=False)


def test_wrong_image_size_labels_and_counts(tmp_path):
    folder = tmp_path / "mnist"
    write_dataset(tmp_path)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((300, 32, 32)), 0x803)
    with pytest.raises(data.DataError, match=r"shape \(32, 32\)"):
        data.load("mnist", data_dir=tmp_path, download=False)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((299, 28, 28)), 0x803)
    with pytest.raises(data.DataError, match="299 images but .* 300 labels"):
        data.load("mnist", data_dir=tmp_path, download=False)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((300, 28, 28)), 0x803)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(300, 12), 0x801)
    with pytest.raises(data.DataError, match="label 12"):
        data.load("mnist", data_dir=tmp_path, download=False)


def test_damaged_folder_is_not_skipped_for_a_later_one(tmp_path, monkeypatch):
    """A corrupt file in data_dir must fail loudly, not quietly load other data."""
    write_dataset(tmp_path / "good")
    write_dataset(tmp_path / "bad")
    (tmp_path / "bad" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"junk")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "good"))
    with pytest.raises(data.DataError):
        data.load("mnist", data_dir=tmp_path / "bad", download=False)


def test_unknown_dataset_and_split():
    with pytest.raises(data.DataError, match="unknown dataset 'cifar10'"):
        data.load("cifar10")
    with pytest.raises(data.DataError, match="unknown split"):
        data.load("mnist", "validation")


def test_pipeline_range_fixed_batches_limit_labels(fake_data):
    root, arrays = fake_data
    ds = data.load_dataset("mnist", batch_size=64, limit=200, data_dir=root, with_labels=True,
                           download=False)
    batches = list(ds)
    assert len(batches) == 3  # 200 // 64: the partial batch is dropped
    for images, labels in batches:
        assert images.shape == (64, 28, 28, 1) and labels.shape == (64,)
        assert images.dtype.name == "float32"
    values = np.concatenate([b[0].numpy().ravel() for b in batches])
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert values.min() == -1.0 and values.max() == 1.0  # 0 -> -1 and 255 -> 1 exactly
    # Only the first 200 images are used, each at most once per epoch.
    limit_set = {img.tobytes() for img in arrays["train"][0][:200]}
    for images, _ in batches:
        for img in np.rint((images.numpy()[..., 0] + 1) * 127.5).astype(np.uint8):
            assert img.tobytes() in limit_set


def test_pipeline_shuffles_differently_each_epoch_but_reproducibly(fake_data):
    root, _ = fake_data
    images, _ = data.load("mnist", data_dir=root, download=False)
    first = [b.numpy() for b in data.make_dataset(images, batch_size=100, seed=1)]
    again = [b.numpy() for b in data.make_dataset(images, batch_size=100, seed=1)]
    np.testing.assert_array_equal(first[0], again[0])
    ds = data.make_dataset(images, batch_size=100, seed=1)
    epoch1, epoch2 = next(iter(ds)).numpy(), next(iter(ds)).numpy()
    assert not np.array_equal(epoch1, epoch2)


def test_images_and_labels_stay_paired_after_shuffling():
    """Each image carries its label as its brightness, so any mismatch after shuffling shows."""
    labels = np.arange(500, dtype=np.uint8) % 10
    images = np.broadcast_to((labels * 25)[:, None, None, None], (500, 28, 28, 1)).astype(np.uint8)
    seen = []
    for batch_images, batch_labels in data.make_dataset(images, labels, batch_size=50, seed=3):
        brightness = np.rint((batch_images.numpy()[:, 0, 0, 0] + 1) * 127.5)
        np.testing.assert_array_equal(brightness, batch_labels.numpy() * 25)
        seen.append(batch_labels.numpy())
    assert not np.array_equal(np.concatenate(seen), labels)  # it did shuffle


def test_batch_larger_than_data_is_refused(fake_data):
    root, _ = fake_data
    with pytest.raises(data.DataError, match="batch size 512 is larger than the 300 images"):
        data.load_dataset("mnist", batch_size=512, data_dir=root, download=False)


def test_real_mnist_and_fashion_mnist(real_data_dir):
    for name in ("mnist", "fashion_mnist"):
        train_x, train_y = data.load(name, "train", data_dir=real_data_dir, download=False)
        test_x, test_y = data.load(name, "test", data_dir=real_data_dir, download=False)
        assert train_x.shape == (60_000, 28, 28, 1) and test_x.shape == (10_000, 28, 28, 1)
        assert np.bincount(train_y, minlength=10).min() > 5000  # every class well represented
        assert np.bincount(test_y, minlength=10).min() > 800
        assert train_x.max() == 255 and train_x.min() == 0
