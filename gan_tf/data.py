"""Image data for the GANs: find MNIST / Fashion-MNIST on disk, or read a folder of your own
images (notebooks/07_your_own_images.ipynb), check it, and batch it with tf.data.

Look-up order for a dataset's four IDX files (taught in notebooks/02_dcgan_mnist.ipynb):

1. the ``data_dir`` argument: when given, the only folder searched (a typo in it is an
   error naming it, never a silent fall-back to other data),
2. the ``GAN_TF_DATA_DIR`` environment variable,
3. the repository's ``data/`` folder,

each holding ``mnist/`` and ``fashion-mnist/`` sub-folders with the standard
``train-images-idx3-ubyte.gz`` (and ``.gz``-less) files. Only when no folder was given and
neither 2 nor 3 has the files does it fall back to Keras' download, which needs the internet.
"""

import gzip
import os
import struct
from pathlib import Path

import numpy as np

DATA_ENV = "GAN_TF_DATA_DIR"
OFFLINE_ENV = "GAN_TF_OFFLINE"  # set to 1 to never try the download
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# Dataset name -> folder name on disk (the folders follow the upstream projects' spelling).
FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
FILE_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
CLASS_NAMES = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}

# IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte), the number of dims.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


class DataError(Exception):
    """A dataset is missing, damaged or not what gan_tf expects. The message says how to fix it."""


def spelled_name(dataset):
    """The dataset's name as gan_tf spells it: 'fashion-mnist' and 'Fashion_MNIST' both become
    'fashion_mnist'. Needs no file system (config.TrainConfig calls it before any check)."""
    return str(dataset).strip().lower().replace("-", "_")


def canonical_name(dataset):
    """'fashion-mnist' and 'Fashion_MNIST' both mean 'fashion_mnist'; any other value naming an
    existing folder is an image folder, returned as its absolute path (so a run resumed from
    another working directory still finds it)."""
    name = spelled_name(dataset)
    if name in FOLDERS:
        return name
    folder = Path(str(dataset)).expanduser()
    if folder.is_dir():
        return str(folder.resolve())
    raise DataError(f"unknown dataset {dataset!r}: neither one of {', '.join(FOLDERS)} nor an existing "
                    "folder of images. Check the spelling, or pass the path of a folder of "
                    "PNG/JPEG/WebP files.")


def is_image_folder(dataset):
    """True for a dataset that is a folder of images rather than MNIST / Fashion-MNIST."""
    return canonical_name(dataset) not in FOLDERS


def image_shape(dataset, image_size=None):
    """The shape of one training image: (28, 28, 1) for MNIST and Fashion-MNIST, (S, S, 3) for
    an image folder read at ``image_size`` S."""
    return (image_size, image_size, 3) if is_image_folder(dataset) else (*IMAGE_SHAPE, 1)


def candidate_dirs(data_dir=None):
    """The folders searched for data, in order: ``data_dir`` alone when it is given, else
    $GAN_TF_DATA_DIR and the repo's data/ (duplicates and unset settings left out)."""
    if data_dir:
        return [Path(data_dir).expanduser()]
    found = []
    for d in (os.environ.get(DATA_ENV), REPO_DATA_DIR):
        if d and Path(d).expanduser() not in found:
            found.append(Path(d).expanduser())
    return found


def _find_file(folder, stem):
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx(path, magic, item_shape):
    """Read one IDX file into a uint8 array, checking its header against its length."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip raises these on truncated or non-gzip files
        raise DataError(f"{path} cannot be read ({e}). Delete it and copy the file again.") from e
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is too short to be an IDX file ({len(raw)} bytes). "
                        "Delete it and copy the file again.")
    (found_magic,) = struct.unpack(">I", raw[:4])
    if found_magic != magic:
        raise DataError(f"{path} has magic number {found_magic:#010x}, expected {magic:#010x}: "
                        "it is not the IDX file its name says (images and labels swapped?).")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    if tuple(dims[1:]) != tuple(item_shape):
        raise DataError(f"{path} holds items of shape {tuple(dims[1:])}, expected {item_shape}.")
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{path} has {len(raw)} bytes but its header promises {expected}: "
                        "the file is truncated or padded. Delete it and copy the file again.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_split(folder, split):
    """Images (N, 28, 28, 1) uint8 and labels (N,) uint8 of one split from one folder."""
    folder = Path(folder)
    image_stem, label_stem = FILE_STEMS[split]
    image_path, label_path = _find_file(folder, image_stem), _find_file(folder, label_stem)
    if image_path is None or label_path is None:
        missing = [s for s, p in ((image_stem, image_path), (label_stem, label_path)) if p is None]
        raise DataError(f"{folder} lacks {' and '.join(m + '(.gz)' for m in missing)}.")
    images = read_idx(image_path, IMAGES_MAGIC, IMAGE_SHAPE)
    labels = read_idx(label_path, LABELS_MAGIC, ())
    if len(images) != len(labels):
        raise DataError(f"{image_path} has {len(images)} images but {label_path} has "
                        f"{len(labels)} labels; the two files are from different releases.")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(f"{label_path} has label {labels.max()}; labels must be 0-9.")
    return images[..., None], labels


def check_labels(labels, n):
    """Refuse labels that are not one class per image (None: no labels, nothing to check)."""
    if labels is not None and np.shape(labels) != (n,):
        raise ValueError(f"labels must hold one class per image: {n} images, labels of shape "
                         f"{np.shape(labels)}")


def to_unit_range(images):
    """uint8 0..255 -> float32 in [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def prepare_images(images, shape=(28, 28, 1)):
    """Check images given to evaluate or translate and bring them to float32 (N, *shape) in [-1, 1].

    Accepts uint8 (0..255), floats in [0, 1] or floats in [-1, 1]; returns (images, which).
    Grey images (shape[-1] == 1) may also come without their channel axis.
    """
    images = np.asarray(images)
    shape = tuple(shape)
    if images.ndim == 3 and shape[-1] == 1:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != shape:
        also = f" or (N, {shape[0]}, {shape[1]})" if shape[-1] == 1 else ""
        want = ", ".join(map(str, shape))
        raise ValueError(f"images must have shape (N, {want}){also}; got {images.shape}")
    if len(images) == 0:
        raise ValueError("the array holds no images (N = 0)")
    if images.dtype == np.uint8:
        return to_unit_range(images), "uint8 pixels 0..255"
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float, got {images.dtype}")
    if not np.isfinite(images).all():
        raise ValueError(f"{int((~np.isfinite(images)).sum())} pixel values are NaN or infinite")
    low, high = float(images.min()), float(images.max())
    slack = 1e-3  # float round-off, e.g. after a blur, may step just outside the range
    if low >= -slack and high <= 1 + slack:
        return np.clip(images.astype(np.float32), 0, 1) * 2 - 1, "floats in [0, 1]"
    if low >= -1 - slack and high <= 1 + slack:
        return np.clip(images.astype(np.float32), -1, 1), "floats in [-1, 1]"
    raise ValueError(f"pixel values span [{low:.3g}, {high:.3g}]; expected [-1, 1], [0, 1] or uint8")


def _download(name, split):
    """Keras' own download (needs the internet); cached by Keras under ~/.keras/datasets."""
    import keras

    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist}[name]
    train, test = loader.load_data()
    images, labels = train if split == "train" else test
    return images[..., None].astype(np.uint8), labels.astype(np.uint8)


def load(dataset="mnist", split="train", data_dir=None, download=None):
    """Return ``(images, labels)`` as uint8 arrays of shape (N, 28, 28, 1) and (N,).

    Searches ``data_dir`` alone when it is given, else ``$GAN_TF_DATA_DIR``, then the repo's
    ``data/``; a folder that has the files but holds damaged ones is an error (never silently
    skipped). With no folder given and nothing on disk it asks Keras to download the data,
    unless ``download=False`` or ``$GAN_TF_OFFLINE`` is 1.
    """
    if download is None:
        download = os.environ.get(OFFLINE_ENV) != "1"
    name = canonical_name(dataset)
    folder = find_folder(name, split, data_dir)
    if folder is not None:
        return read_split(folder, split)
    searched = [root / FOLDERS[name] for root in candidate_dirs()]
    failure = f"download not tried (download=False or {OFFLINE_ENV}=1)"
    if download:
        try:
            return _download(name, split)
        except Exception as e:  # no internet, proxy, disk full, ...: all end in the advice below
            failure = f"download failed: {type(e).__name__}: {e}"
    where = "\n".join(f"  - {p}" for p in searched)
    raise DataError(
        f"no {name} data found. Searched:\n{where}\nand {failure}.\n"
        f"Fix: put the four {FOLDERS[name]} files ({', '.join(FILE_STEMS['train'] + FILE_STEMS['test'])}, "
        f"gzipped or not) in <DIR>/{FOLDERS[name]}/ and pass data_dir=<DIR> "
        f"(CLI: --data-dir <DIR>) or set {DATA_ENV}=<DIR>."
    )


def find_folder(dataset, split="train", data_dir=None):
    """The folder ``load`` reads a split from, or None when no folder on disk has it (``load``
    then tries the download). A given ``data_dir`` without the dataset is an error naming it.
    Reads no data, so the CLI checks it before TensorFlow loads."""
    name = canonical_name(dataset)
    if split not in FILE_STEMS:
        raise DataError(f"unknown split {split!r}; choose 'train' or 'test'")

    def has_split(folder):  # either file present: read_split names the other if it is missing
        return _find_file(folder, FILE_STEMS[split][0]) or _find_file(folder, FILE_STEMS[split][1])

    if not data_dir:
        return next((root / FOLDERS[name] for root in candidate_dirs()
                     if has_split(root / FOLDERS[name])), None)
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"the data folder {root} does not exist. Check the path given as data_dir "
                        f"(CLI: --data-dir); it should hold {FOLDERS[name]}/.")
    if not has_split(root / FOLDERS[name]):
        raise DataError(f"the data folder {root} has no {name} data: {root / FOLDERS[name]} lacks "
                        f"{FILE_STEMS[split][0]}(.gz). Put the four {FOLDERS[name]} files there, or "
                        f"leave out data_dir (--data-dir) to search ${DATA_ENV} and the repo's data/.")
    return root / FOLDERS[name]


def make_dataset(images, labels=None, batch_size=256, shuffle=True, seed=0):
    """A tf.data pipeline of float32 images in [-1, 1] (and labels, if given).

    Batches have a fixed shape (the last, partial batch is dropped) so that a
    ``tf.function`` training step traces once. Reshuffles every epoch from ``seed``.
    """
    import tensorflow as tf

    if len(images) < batch_size:
        raise DataError(f"batch size {batch_size} is larger than the {len(images)} images; "
                        "use a smaller batch size or more images.")
    tensors = images if labels is None else (images, labels)
    ds = tf.data.Dataset.from_tensor_slices(tensors)

    def scale(x, *y):
        x = tf.cast(x, tf.float32) / 127.5 - 1.0
        return (x, *y) if y else x

    # The images stay uint8 in memory and each batch is scaled as it is drawn: a float32 copy
    # would take 4x the memory (10 GB for CelebA's 200,000 faces at 64x64).
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True).map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# CycleGAN's second domain (notebooks/06_cyclegan.ipynb): a fixed style applied to real images,
# so that the true translation of every test image is known.
STYLE_TRANSFORMS = {
    "thicken": "bold strokes: each pixel becomes the brightest of its 3x3 neighbourhood (dilation)",
    "thin": "thin strokes: each pixel becomes the darkest of its 2x2 neighbourhood (erosion)",
    "invert": "white on black becomes black on white (255 - pixel)",
}


def style_transform(images, name="thicken"):
    """Apply a style of STYLE_TRANSFORMS to uint8 images (N, 28, 28, 1); returns uint8 of that shape."""
    if name not in STYLE_TRANSFORMS:
        raise DataError(f"unknown style transform {name!r}; choose one of: {', '.join(STYLE_TRANSFORMS)}")
    images = np.asarray(images, np.uint8)
    if name == "invert":
        return 255 - images
    size, reduce = (3, np.max) if name == "thicken" else (2, np.min)
    # Background (0) padding: dilation never grows from the border, erosion treats it as ink-free.
    before = (size - 1) // 2
    padded = np.pad(images, ((0, 0), (before, size - 1 - before), (before, size - 1 - before), (0, 0)))
    h, w = images.shape[1:3]
    shifted = [padded[:, i:i + h, j:j + w] for i in range(size) for j in range(size)]
    return reduce(np.stack(shifted), axis=0)


def unpaired_domains(images, transform="thicken"):
    """CycleGAN's two training domains from one split: A = the even-numbered images as they are,
    B = the odd-numbered ones through ``style_transform``. No digit appears in both, so no
    training pair exists (uint8 arrays)."""
    return images[0::2], style_transform(images[1::2], transform)


def make_unpaired_dataset(images_a, images_b, batch_size=16, seed=0):
    """Batches (a, b) of [-1, 1] images, each domain shuffled on its own (make_dataset)."""
    import tensorflow as tf

    return tf.data.Dataset.zip((make_dataset(images_a, batch_size=batch_size, seed=seed),
                                make_dataset(images_b, batch_size=batch_size, seed=seed + 1)))


def load_dataset(dataset="mnist", split="train", batch_size=256, limit=None, shuffle=True,
                 seed=0, data_dir=None, with_labels=False, download=None):
    """``load`` and ``make_dataset`` in one call, for your own training loops (the README shows it;
    gan_tf.train calls the two itself, to cut the images to ``--limit`` once for every epoch).

    ``limit`` keeps the first N images (quick runs). Returns the ``tf.data.Dataset``.
    """
    images, labels = load(dataset, split, data_dir=data_dir, download=download)
    if limit is not None:
        if limit < 1:
            raise DataError(f"limit must be at least 1, got {limit}")
        images, labels = images[:limit], labels[:limit]
    return make_dataset(images, labels if with_labels else None, batch_size, shuffle, seed)


# Your own images (notebooks/07_your_own_images.ipynb): any folder of pictures, read in colour.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
IMAGE_SIZES = (32, 64)  # the generators' output sizes (models.make_generator)
DEFAULT_IMAGE_SIZE = 64
FOLDER_ORDER_SEED = 0  # a folder's images are taken in one fixed random order (see list_images)


EXAMPLE_FOLDERS = {"emoji": Path("emoji") / "png64"}  # where the data README puts the example sets


def example_folder(name="emoji"):
    """The folder of an example image set (``emoji``: 3,786 colour emoji, notebook 07), found where
    MNIST is ($GAN_TF_DATA_DIR, then the repo's data/)."""
    searched = [root / EXAMPLE_FOLDERS[name] for root in candidate_dirs()]
    for folder in searched:
        if folder.is_dir():
            return folder
    where = "\n".join(f"  - {p}" for p in searched)
    raise DataError(f"the {name} images are not on this machine. Searched:\n{where}\nFix: copy the folder "
                    f"there (data/README.md says where to get it), or pass any folder of your own images.")


def list_images(folder):
    """The image files under ``folder`` (searched recursively; PNG, JPEG, WebP by their suffix),
    in a fixed pseudo-random order, so that ``--limit N`` takes a mixed sample of N images instead
    of the first N names (for the emoji, the first few hundred names are all flags)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Pass the path of a folder of PNG/JPEG/WebP images.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)} files, searched in "
                        "all sub-folders). Pass the folder that holds your pictures.")
    order = np.random.default_rng(FOLDER_ORDER_SEED).permutation(len(files))
    return [files[i] for i in order]


def read_image(path, size=DEFAULT_IMAGE_SIZE):
    """One picture as uint8 (size, size, 3): turned upright by its EXIF tag (phone photos), a
    transparent background composited onto white, the centre square cut out and resized."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
        image = image.convert("RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        # Lanczos filtering averages over the pixels a shrink drops, so edges do not turn jagged.
        image = image.resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(image, np.uint8)


def load_folder(folder, image_size=DEFAULT_IMAGE_SIZE, limit=None, log=print, progress=False):
    """Read the images of a folder into one uint8 array (N, S, S, 3), S = ``image_size``.

    ``limit`` reads only N of them (a fixed random sample, list_images). Files that cannot be read
    as images are skipped and named in one warning; a folder without a readable image is an error.
    Decoding runs on every core (Pillow releases the interpreter lock while it decodes);
    ``progress`` shows a bar for folders of 5,000 images or more.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    if image_size not in IMAGE_SIZES:
        raise DataError(f"image size {image_size} is not supported; choose one of: "
                        f"{', '.join(map(str, IMAGE_SIZES))}")
    files = list_images(folder)[:limit]

    def read(path):
        try:
            return read_image(path, image_size), None
        except Exception as e:  # Pillow raises many types for damaged or mislabelled files
            return None, f"{path.name} ({type(e).__name__}: {str(e)[:80]})"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(tqdm(pool.map(read, files), total=len(files), desc=f"reading {Path(folder).name}",
                            unit="image", disable=not progress or len(files) < 5000, leave=False))
    images = [image for image, _ in results if image is not None]
    failed = [why for _, why in results if why is not None]
    if failed:
        shown = "; ".join(failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
        log(f"warning: skipped {len(failed)} of {len(files)} files in {folder} that are not readable "
            f"images: {shown}")
    if not images:
        raise DataError(f"none of the {len(files)} image files in {folder} could be read ({failed[0]}). "
                        "Check that they are PNG, JPEG or WebP pictures.")
    return np.stack(images)
