"""Scoring colour images of your own folder without downloaded weights (notebooks/07_your_own_images.ipynb).

FID compares images in the features of an ImageNet Inception network, whose weights come from
the internet. For an image folder gan_tf trains its own feature extractor, on the folder itself
and without labels: a small CNN that learns which way up an image is (each picture shown
rotated by 0, 90, 180 or 270 degrees; Gidaris et al. 2018). To tell, it has to recognise what
the picture shows (a face's eyes sit above its mouth, a flag's stripes run across), so its
penultimate features describe content and shape; blur, noise and scrambled parts move them.

In those features (``FolderEvaluator.evaluate``):

- KID, the kernel distance (Binkowski et al. 2018): the squared MMD with the cubic kernel
  k(x, y) = (x.y / d + 1)^3, estimated without bias, so real against real is 0 up to noise at
  any number of images (FID is biased upward at small N); averaged over subsets, with its spread;
- FD: the Frechet distance of Gaussians fitted to the features (FID's formula in these features);
- precision, recall, density and coverage, as gan_tf.metrics computes them for MNIST.

Scores are taken against half of the folder; the other half, scored the same way, is the floor.

The encoder is trained once per set of images (about two minutes for 3,800 on 2 cores) and
cached in ``$GAN_TF_CACHE_DIR`` (default ``~/.cache/gan_tf``). ``nearest_neighbours`` finds each
image's closest training images, to see whether a generator copies its data.
"""

import hashlib
import json

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from . import data
from .metrics import (
    DENSITY_K,
    RealReference,
    cache_dir,
    density_coverage,
    frechet_distance,
    precision_recall,
    unit_length,
)

ENCODER_EPOCHS = 8
ENCODER_MIN_STEPS = 600  # a small folder gets more epochs, so the encoder still sees enough batches
KID_SUBSET = 1000  # images per KID subset (the usual choice)
KID_SUBSETS = 20


def make_encoder(image_size=64):
    """A small CNN for (S, S, 3) images in [-1, 1]: 4 rotation logits, and a 128-unit 'features' layer.
    It looks at 32x32 (a 64x64 image is averaged down first): 4x less work, and which way is up
    shows at that size."""
    image = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.AveragePooling2D(image_size // 32)(image) if image_size > 32 else image
    for width in (32, 64, 128):  # 32 -> 16 -> 8 -> 4
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(128, 3, padding="same", activation="relu")(x))
    x = layers.Dense(128, activation="relu", name="features")(x)
    return keras.Model(image, layers.Dense(4, name="rotation")(x), name="rotation_encoder")


def rotations(images):
    """Every image turned by 0, 90, 180 and 270 degrees, and which turn each copy got (0-3)."""
    turned = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in range(4)])
    return turned, np.repeat(np.arange(4), len(images))


def train_encoder(images, epochs=ENCODER_EPOCHS, seed=0, verbose=0):
    """Train the rotation encoder on uint8 images (N, S, S, 3) for ``epochs``, or for as many as
    ENCODER_MIN_STEPS batches need; returns (model, held-out accuracy).

    A tenth of the images is held out: its accuracy at telling the rotation says whether the
    encoder learned something about the pictures (chance is 25 %)."""
    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(images))
    held = max(1, len(images) // 10)
    train_x, train_y = rotations(data.to_unit_range(images[order[held:]]))
    test_x, test_y = rotations(data.to_unit_range(images[order[:held]]))
    model = make_encoder(images.shape[1])
    per_epoch = -(-len(train_x) // 128)
    epochs = max(epochs, -(-ENCODER_MIN_STEPS // per_epoch))
    batches = per_epoch * epochs
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, batches)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    # Left-right mirroring keeps which way is up, so it is a free extra variety of images.
    flip = keras.Sequential([layers.RandomFlip("horizontal", seed=seed)])
    train = (tf.data.Dataset.from_tensor_slices((train_x, train_y)).shuffle(len(train_x), seed=seed)
             .batch(128).map(lambda x, y: (flip(x, training=True), y)).prefetch(tf.data.AUTOTUNE))
    model.fit(train, epochs=epochs, verbose=verbose, shuffle=False)  # shuffled above
    accuracy = float(model.evaluate(test_x, test_y, batch_size=500, verbose=0)[1])
    return model, accuracy


def folder_key(images):
    """A short fingerprint of a set of images, naming its cached encoder."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]


def load_encoder(images, log=print):
    """The rotation encoder of these uint8 images (N, S, S, 3) and its held-out accuracy: from the
    cache when this exact set of images trained one before, else trained now and cached."""
    folder = cache_dir() / "encoders"
    weights = folder / f"encoder_{folder_key(images)}.weights.h5"
    info = weights.with_name(weights.name.replace(".weights.h5", ".json"))
    if weights.exists() and info.exists():
        try:
            model = make_encoder(images.shape[1])
            model.load_weights(weights)
            return model, json.loads(info.read_text())["rotation_accuracy"]
        except Exception as e:  # a damaged cache file is retrained, never fatal
            log(f"warning: cached encoder {weights} unreadable ({type(e).__name__}); training a new one")
    log(f"training the feature encoder on these {len(images)} images (once; cached in {folder})")
    model, accuracy = train_encoder(images)
    log(f"encoder: rotation told right on {100 * accuracy:.1f} % of held-out images (chance 25 %)")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_name(weights.name.replace(".weights.h5", ".tmp.weights.h5"))
    model.save_weights(tmp)
    tmp.replace(weights)  # a kill mid-write leaves no half file under the real name
    info.write_text(json.dumps({"rotation_accuracy": accuracy, "images": len(images)}) + "\n")
    return model, accuracy


def kernel_distance(x, y, subset=KID_SUBSET, subsets=KID_SUBSETS, seed=0):
    """KID: the unbiased squared MMD between feature sets x and y with the kernel
    (x.y / d + 1)^3, averaged over ``subsets`` random subsets of ``subset`` rows of each
    (fewer when a set is smaller). Returns (mean, standard deviation over subsets)."""
    rng = np.random.default_rng(seed)
    m = min(subset, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 images on each side, got {len(x)} and {len(y)}")
    d = x.shape[1]
    scores = []
    for _ in range(subsets):
        a, b = x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)]
        kaa, kbb, kab = ((a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3)
        # Unbiased: the diagonals (each image with itself) are left out of the within-set means.
        within = (kaa.sum() - np.trace(kaa) + kbb.sum() - np.trace(kbb)) / (m * (m - 1))
        scores.append(within - 2 * kab.mean())
    return float(np.mean(scores)), float(np.std(scores))


class FolderEvaluator(RealReference):
    """Scores images against an image folder's pictures in the rotation encoder's features;
    build once, call many times. ``images``: the folder's pictures as uint8 (N, S, S, 3), when
    the caller has read them already (else read from ``folder`` at ``image_size``).

    The encoder learns from all the pictures; scores compare against the *reference half* (the
    first half in the folder's fixed random order, data.list_images), so that the other half,
    real pictures the reference does not contain, gives every score's floor (``real_floor``).
    """

    def __init__(self, folder=None, image_size=data.DEFAULT_IMAGE_SIZE, images=None, log=print):
        if images is None:
            images = data.load_folder(folder, image_size, log=log)
        if len(images) < 2 * (DENSITY_K + 1):
            raise ValueError(f"need at least {2 * (DENSITY_K + 1)} pictures to score against, "
                             f"got {len(images)}")
        self.images = images
        self.reference, self.held_out = images[: len(images) // 2], images[len(images) // 2:]
        self.encoder, self.accuracy = load_encoder(images, log)
        self._features = keras.Model(self.encoder.input, self.encoder.get_layer("features").output)
        self.set_reference(self.features(data.to_unit_range(self.reference)))

    def real_floor(self, k=3):
        """The scores of the held-out half of the real pictures: what a perfect generator gets."""
        return self.evaluate(self.held_out, k)

    @property
    def image_shape(self):
        return self.images.shape[1:]

    def features(self, images):
        """Penultimate features float64 (N, 128) of [-1, 1] images."""
        return np.concatenate([self._features(tf.constant(images[i:i + 500]), training=False).numpy()
                               for i in range(0, len(images), 500)]).astype(np.float64)

    def evaluate(self, images, k=3):
        """KID, FD, precision, recall, density and coverage of images (any accepted range)
        against the folder's reference half, as a dict of plain numbers."""
        images, assumed = data.prepare_images(images, self.image_shape)
        if len(images) <= max(k, DENSITY_K):
            raise ValueError(f"need more than {max(k, DENSITY_K)} images for the k-NN metrics, "
                             f"got {len(images)}")
        feats = self.features(images)
        kid, kid_std = kernel_distance(feats, self.real_features)
        directions = unit_length(feats)
        precision, recall = precision_recall(self.real_directions, directions, k, self.real_radii(k))
        density, coverage = density_coverage(self.real_directions, directions, DENSITY_K,
                                             self.real_radii(DENSITY_K))
        return {"n": len(images), "assumed_input": assumed, "kid": kid, "kid_std": kid_std,
                "fd": frechet_distance(feats.mean(0), np.cov(feats, rowvar=False),
                                       self.real_mu, self.real_cov),
                "precision": precision, "recall": recall, "k": k, "density": density, "coverage": coverage,
                "encoder_rotation_accuracy": self.accuracy}


def nearest_neighbours(images, reference, batch=500):
    """For each image in [-1, 1], the index of the closest ``reference`` image (same range) and
    the root-mean-square pixel difference to it: a generator that copies its training images
    has fakes with near-zero distances."""
    flat_ref = reference.reshape(len(reference), -1).astype(np.float32)
    ref_sq = (flat_ref ** 2).sum(1)
    index, distance = [], []
    for start in range(0, len(images), batch):
        flat = images[start:start + batch].reshape(-1, flat_ref.shape[1]).astype(np.float32)
        d2 = np.maximum((flat ** 2).sum(1)[:, None] + ref_sq[None] - 2 * flat @ flat_ref.T, 0)
        best = d2.argmin(1)
        index.append(best)
        distance.append(np.sqrt(d2[np.arange(len(best)), best] / flat_ref.shape[1]))
    return np.concatenate(index), np.concatenate(distance)
