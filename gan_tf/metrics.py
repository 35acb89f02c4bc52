"""Scoring a GAN offline, with a classifier trained on the local data (notebooks/05_evaluating_gans.ipynb).

FID and the Inception Score need ImageNet Inception weights from the internet; here a small
CNN trained by gan_tf on the dataset's own training split plays Inception's part:

- cFID: the Frechet distance between Gaussians fitted to the classifier's penultimate features
  of generated images and of the real test split (lower is better);
- classifier Inception Score: exp(E_x KL(p(y|x) || p(y))), from 1 to the number of classes;
- mode coverage: the histogram of predicted classes, how many classes are covered, KL to uniform;
- precision and recall of k-nearest-neighbour manifolds in feature space (Kynkaenniemi et al. 2019),
  on unit-length features (see ``unit_length``), and density and coverage (Naeem et al. 2020),
  which outliers do not inflate;
- intra-class cFID: each class's images against that class's real ones, which sees a generator
  that draws one template per class (label accuracy rewards it);
- the power spectrum against the data's (``spectral_excess``), where periodic upsampling
  artefacts (checkerboards) stand out;
- for a CycleGAN, whose right answers are known (``translation_scores``): the pixel distance to
  the true translation, how often the class survives translation, and the cycle's error.

gan_tf ships the two classifiers (``gan_tf/classifiers/``, trained by ``train_classifier``), so
that everyone's scores are measured by the same network and nobody waits for training. If a
shipped file is missing or damaged, the classifier is trained on first use and cached in
``$GAN_TF_CACHE_DIR`` (default ``~/.cache/gan_tf``).
"""

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from . import data
from .config import DENSITY_K  # neighbours for density and coverage (the CLI checks it too)
from .data import prepare_images, to_unit_range  # noqa: F401 - metrics.prepare_images is public
from .models import num_classes_of
from .sampling import balanced_labels, generate, translate

CACHE_ENV = "GAN_TF_CACHE_DIR"
SHIPPED_DIR = Path(__file__).resolve().parent / "classifiers"
REQUIRED_ACCURACY = {"mnist": 0.99, "fashion_mnist": 0.90}
CLASSIFIER_EPOCHS = {"mnist": 4, "fashion_mnist": 6}  # clothes are harder to tell apart than digits


def cache_dir():
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gan_tf")


def make_classifier(num_classes=data.NUM_CLASSES):
    """A small CNN; its 128-unit 'features' layer is what the distances are measured in."""
    image = keras.Input(shape=(28, 28, 1), name="image")
    x = image
    for width in (32, 64):  # 28 -> 24 -> 12 -> 8 -> 4
        x = layers.Conv2D(width, 3, activation="relu")(x)
        x = layers.Conv2D(width, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", name="features")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(image, layers.Dense(num_classes, name="logits")(x), name="classifier")


def train_classifier(dataset="mnist", data_dir=None, epochs=None, seed=0, verbose=0):
    """Train the evaluation classifier on the training split; return (model, test accuracy)."""
    name = data.canonical_name(dataset)
    epochs = epochs or CLASSIFIER_EPOCHS[name]
    keras.utils.set_random_seed(seed)
    train_x, train_y = data.load(name, "train", data_dir=data_dir)
    test_x, test_y = data.load(name, "test", data_dir=data_dir)
    model = make_classifier()
    steps = epochs * (len(train_x) // 128)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(to_unit_range(train_x), train_y, batch_size=128, epochs=epochs, verbose=verbose)
    accuracy = float(model.evaluate(to_unit_range(test_x), test_y, batch_size=1000, verbose=0)[1])
    return model, accuracy


def classifier_files(folder, dataset):
    """Where a classifier lives in a folder: its weights and a JSON note of its test accuracy."""
    return folder / f"classifier_{dataset}.weights.h5", folder / f"classifier_{dataset}.json"


def load_classifier(dataset="mnist", data_dir=None, log=print):
    """The evaluation classifier and its test accuracy: the shipped one, else a cached one,
    else one trained now (and cached) on the local data."""
    name = data.canonical_name(dataset)
    for folder in (SHIPPED_DIR, cache_dir()):
        weights, info = classifier_files(folder, name)
        if not (weights.exists() and info.exists()):
            continue
        try:
            model = make_classifier()
            model.load_weights(weights)
            return model, json.loads(info.read_text())["test_accuracy"]
        except Exception as e:  # a damaged file is passed over, never fatal
            log(f"warning: classifier {weights} unreadable ({type(e).__name__}); trying the next one")
    log(f"training the {name} evaluation classifier (once; cached in {cache_dir()})")
    model, accuracy = train_classifier(name, data_dir)
    log(f"{name} classifier test accuracy: {100 * accuracy:.2f} %")
    if accuracy < REQUIRED_ACCURACY[name]:
        raise RuntimeError(f"the {name} classifier reached only {100 * accuracy:.2f} % test accuracy "
                           f"(needs {100 * REQUIRED_ACCURACY[name]:.0f} %); its scores would mislead")
    save_classifier(model, accuracy, cache_dir(), name)
    return model, accuracy


def save_classifier(model, accuracy, folder, dataset):
    """Write a classifier where ``load_classifier`` looks; a kill mid-write leaves no half file."""
    weights, info = classifier_files(Path(folder), dataset)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_name(weights.name.replace(".weights.h5", ".tmp.weights.h5"))
    model.save_weights(tmp)
    os.replace(tmp, weights)
    info.write_text(json.dumps({"test_accuracy": accuracy}) + "\n")


def frechet_distance(mu1, cov1, mu2, cov2):
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2).

    Both square roots are taken of symmetric matrices by eigendecomposition, with negative
    round-off eigenvalues clipped to zero, so singular covariances give a finite number.
    """
    values, vectors = np.linalg.eigh(cov1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ cov2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * cross)


def _pairwise_sq_distances(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0)


def _kth_neighbour_radius(features, k, chunk=2000):
    """Distance from each point to its k-th nearest other point."""
    radii = np.empty(len(features))
    for start in range(0, len(features), chunk):
        d = _pairwise_sq_distances(features[start:start + chunk], features)
        radii[start:start + chunk] = np.sqrt(np.partition(d, k, axis=1)[:, k])  # column 0 is itself
    return radii


def _inside_manifold(points, centres, radii, chunk=2000):
    """Which points fall within some centre's k-NN ball."""
    inside = np.empty(len(points), bool)
    for start in range(0, len(points), chunk):
        d = np.sqrt(_pairwise_sq_distances(points[start:start + chunk], centres))
        inside[start:start + chunk] = (d <= radii[None]).any(axis=1)
    return inside


def unit_length(features):
    """Scale each feature vector to length 1.

    Poor images (noise, blur) give small ReLU features near the origin, where the large
    k-NN balls of the few odd real digits would swallow them and fake a precision of 1.
    Comparing directions only removes that failure (measured in tests/test_metrics.py).
    """
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def precision_recall(real_features, fake_features, k=3, real_radii=None):
    """Precision: share of fakes inside the real manifold; recall: share of reals inside the fake one.
    ``real_radii``: the real points' k-NN radii, when the caller keeps them."""
    if real_radii is None:
        real_radii = _kth_neighbour_radius(real_features, k)
    fake_radii = _kth_neighbour_radius(fake_features, k)
    precision = _inside_manifold(fake_features, real_features, real_radii).mean()
    recall = _inside_manifold(real_features, fake_features, fake_radii).mean()
    return float(precision), float(recall)


def density_coverage(real_features, fake_features, k=5, real_radii=None):
    """Density and coverage (Naeem et al. 2020), both from the k-NN balls of the *real* points,
    so a few outlying fakes cannot inflate them the way they inflate k-NN recall.

    density: how many real balls hold a fake, on average, divided by k: about 1 when the fakes
    are distributed like the reals, below 1 when they fall outside the data, above 1 when they
    crowd its densest part. coverage: the share of real points whose ball holds at least one
    fake; it falls when the fakes miss parts of the data (mode collapse). Both depend on the
    number of fakes: compare at one N, against real images scored at that N. ``real_radii``:
    the real points' k-NN radii, when the caller keeps them.
    """
    radii = _kth_neighbour_radius(real_features, k) if real_radii is None else real_radii
    counts, covered = np.empty(len(fake_features)), np.zeros(len(real_features), bool)
    for start in range(0, len(fake_features), 2000):
        inside = np.sqrt(_pairwise_sq_distances(fake_features[start:start + 2000], real_features)) <= radii
        counts[start:start + 2000] = inside.sum(1)
        covered |= inside.any(0)
    return float(counts.mean() / k), float(covered.mean())


def power_spectrum(images):
    """The mean 2-D power spectrum of a batch of images (N, H, W, C): each image's channels averaged
    and its mean brightness removed, |FFT|^2, averaged over the batch; zero frequency in the
    centre, the highest (a pattern that flips every pixel) at the edges."""
    x = np.asarray(images, np.float64).mean(axis=-1)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    return np.fft.fftshift((np.abs(np.fft.fft2(x)) ** 2).mean(axis=0))


def spectral_excess(fake, real):
    """How much a generator's spectrum departs from the data's, per frequency: log10 of the ratio
    of the fakes' power to the reals' (0: as much as in real images, 1: ten times more), for images
    in one range. Upsampling artefacts such as a transposed convolution's checkerboard are
    periodic, so they show up as bright spots at the frequencies of their period (Durall et al.
    2020), where real pictures have little power."""
    eps = 1e-12
    return np.log10((power_spectrum(fake) + eps) / (power_spectrum(real) + eps))


def intra_class_fid(features, labels, real_features, real_labels, num_classes=data.NUM_CLASSES,
                    min_count=10):
    """cFID of each class's images against that class's real images (StudioGAN's intra-class
    FID), a list with NaN for a class with fewer than ``min_count`` images. A generator that draws
    one template per class scores well on label accuracy and badly here."""
    scores = []
    for c in range(num_classes):
        mine, theirs = features[labels == c], real_features[real_labels == c]
        if len(mine) < min_count:
            scores.append(float("nan"))
            continue
        scores.append(frechet_distance(mine.mean(0), np.cov(mine, rowvar=False),
                                       theirs.mean(0), np.cov(theirs, rowvar=False)))
    return scores


def class_recall(directions, labels, real_directions, real_labels, k=3, num_classes=data.NUM_CLASSES):
    """k-NN recall within each class: the share of a class's real images that lie inside the
    manifold of the images of that class, a list with NaN for a class with k or fewer images.
    A generator that draws one template per class scores near 0 although every image is
    labelled right, and so does one that draws a class in another class's styles, which
    whole-set recall credits. Like all k-NN recall it rises when a class's images scatter far
    (their balls grow): read it with precision. Depends on the images per class: compare at one N."""
    scores = []
    for c in range(num_classes):
        mine = directions[labels == c]
        if len(mine) <= k:
            scores.append(float("nan"))
            continue
        scores.append(precision_recall(real_directions[real_labels == c], mine, k)[1])
    return scores


class RealReference:
    """The real images' features that scores compare against: their mean and covariance (FD),
    unit-length directions (k-NN metrics) and k-NN radii, each k's computed once on first use.
    Shared by ``Evaluator`` and folder_metrics.FolderEvaluator."""

    def set_reference(self, real_features):
        self.real_features = real_features
        self.real_mu, self.real_cov = real_features.mean(0), np.cov(real_features, rowvar=False)
        self.real_directions = unit_length(real_features)
        self._real_radii = {}  # k -> radii (2 s for 10,000 points)

    def real_radii(self, k):
        """The k-NN radii of the real directions, computed on first use."""
        if k not in self._real_radii:
            self._real_radii[k] = _kth_neighbour_radius(self.real_directions, k)
        return self._real_radii[k]


class Evaluator(RealReference):
    """Scores images against one dataset's real test split; build once, call many times."""

    def __init__(self, dataset="mnist", data_dir=None, log=print):
        self.dataset = data.canonical_name(dataset)
        self.classifier, self.accuracy = load_classifier(self.dataset, data_dir, log)
        self._features = keras.Model(self.classifier.input,
                                     [self.classifier.get_layer("features").output,
                                      self.classifier.output])
        test_x, self.test_labels = data.load(self.dataset, "test", data_dir=data_dir)
        self.set_reference(self.features(to_unit_range(test_x))[0])

    def features(self, images):
        """(penultimate features float64 (N, 128), class probabilities (N, 10)) of [-1, 1] images."""
        feats, logits = [], []
        for start in range(0, len(images), 1000):
            f, lg = self._features(tf.constant(images[start:start + 1000]), training=False)
            feats.append(f.numpy())
            logits.append(lg.numpy())
        return (np.concatenate(feats).astype(np.float64),
                tf.nn.softmax(np.concatenate(logits)).numpy().astype(np.float64))

    def label_accuracy(self, images, labels):
        """Share of images the classifier assigns to the class they were generated for."""
        _, probs = self.features(prepare_images(images)[0])
        return float((probs.argmax(1) == np.asarray(labels)).mean())

    def evaluate(self, images, k=3, labels=None):
        """All metrics of a batch of images (any accepted range) as a dict of plain numbers.

        ``labels``: the class each image was generated for (a conditional generator); without
        them, intra-class cFID groups the images by the classifier's label.
        """
        images, assumed = prepare_images(images)
        neighbours = max(k, DENSITY_K)
        if len(images) <= neighbours:
            raise ValueError(f"need more than {neighbours} images for the k-NN metrics, got {len(images)}")
        data.check_labels(labels, len(images))
        feats, probs = self.features(images)
        marginal = probs.mean(0)
        kl = (probs * (np.log(probs + 1e-12) - np.log(marginal + 1e-12))).sum(1)
        counts = np.bincount(probs.argmax(1), minlength=data.NUM_CLASSES)
        share = counts / counts.sum()
        # A class counts as covered when it gets at least a tenth of its fair share.
        covered = int((share >= 0.1 / data.NUM_CLASSES).sum())
        nonzero = share > 0
        directions = unit_length(feats)
        precision, recall = precision_recall(self.real_directions, directions, k, self.real_radii(k))
        density, coverage = density_coverage(self.real_directions, directions, DENSITY_K,
                                             self.real_radii(DENSITY_K))
        grouped_by = probs.argmax(1) if labels is None else np.asarray(labels)
        intra = intra_class_fid(feats, grouped_by, self.real_features, self.test_labels)
        scored = [v for v in intra if np.isfinite(v)]
        per_class = class_recall(directions, grouped_by, self.real_directions, self.test_labels, k)
        return {
            "dataset": self.dataset, "n": len(images), "assumed_input": assumed,
            "cfid": frechet_distance(feats.mean(0), np.cov(feats, rowvar=False),
                                     self.real_mu, self.real_cov),
            "inception_score": float(np.exp(kl.mean())),
            "classes_covered": covered,
            "class_histogram": counts.tolist(),
            "kl_to_uniform": float((share[nonzero] * np.log(share[nonzero] * data.NUM_CLASSES)).sum()),
            "precision": precision, "recall": recall, "k": k,
            "density": density, "coverage": coverage,
            "intra_cfid_mean": float(np.mean(scored)) if scored else float("nan"),
            "intra_cfid_worst": float(np.max(scored)) if scored else float("nan"),
            "intra_cfid": intra, "intra_cfid_by": "classifier labels" if labels is None else "given labels",
            "class_recall_mean": float(np.nanmean(per_class)) if np.isfinite(per_class).any()
            else float("nan"),
            "class_recall": per_class,
            "classifier_test_accuracy": self.accuracy,
        }


_EVALUATORS = {}  # one classifier and set of real features per dataset and process
QUALITY_KEYS = ("cfid", "inception_score", "classes_covered", "precision", "recall", "density", "coverage",
                "intra_cfid_mean", "intra_cfid_worst", "class_recall_mean", "kid", "fd")


def _evaluator(config, log):
    """The run's dataset's Evaluator, built once per process; for an image folder a
    gan_tf.folder_metrics.FolderEvaluator."""
    key = (config.dataset, config.image_size)
    if key not in _EVALUATORS:
        if data.is_image_folder(config.dataset):
            from .folder_metrics import FolderEvaluator

            _EVALUATORS[key] = FolderEvaluator(config.dataset, config.image_size, log=log)
        else:
            _EVALUATORS[key] = Evaluator(config.dataset, config.data_dir, log)
    return _EVALUATORS[key]


def training_scores(config, generator, log=print, n=2000):
    """The metrics of n samples for history.csv (``--eval-every``); for a conditional generator
    also its label accuracy, with every class asked for equally often; for an image folder KID,
    FD and the k-NN metrics in its own features (gan_tf.folder_metrics)."""
    evaluator = _evaluator(config, log)
    labels = balanced_labels(n) if num_classes_of(generator) else None
    images = generate(generator, n, seed=config.seed, labels=labels)
    scores = evaluator.evaluate(images) if labels is None else evaluator.evaluate(images, labels=labels)
    row = {key: round(float(value), 4) for key, value in scores.items() if key in QUALITY_KEYS}
    if labels is not None:
        row["label_accuracy"] = round(evaluator.label_accuracy(images, labels), 4)
    return row


def translation_scores(generator_ab, generator_ba, images, labels, transform, evaluator):
    """How well a CycleGAN translates real uint8 ``images`` (domain A) whose true translations
    T(a) = data.style_transform(a, transform) are known (notebooks/06_cyclegan.ipynb).

    L1 distances are mean absolute differences of [0, 1] pixels. Each comes with its baseline:
    the identity (no translation at all) scores l1_identity; a perfect translator 0.
    class_kept_ab: share of G_AB(a) the classifier gives a's class, next to truth_class_kept,
    the same for T(a) (the classifier was trained on domain A, so T(a) is its ceiling).
    cfid_ab: G_AB(a) against T(a) in the classifier's features, next to the identity's cfid.
    """
    data.check_labels(labels, len(images))
    a = to_unit_range(images)
    b = to_unit_range(data.style_transform(images, transform))
    fake_b = translate(generator_ab, a)
    fake_a = translate(generator_ba, b)
    cycled_a = translate(generator_ba, fake_b)

    def l1(x, y):
        return float(np.mean(np.abs(x - y)) / 2)  # [-1, 1] -> [0, 1] pixels

    (feats_b, probs_b), (feats_fake_b, probs_fake_b) = evaluator.features(b), evaluator.features(fake_b)
    feats_a, _ = evaluator.features(a)
    _, probs_fake_a = evaluator.features(fake_a)

    def fid(x, y):
        return frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))

    labels = np.asarray(labels)
    return {
        "n": len(images), "transform": transform,
        "l1_ab": l1(fake_b, b), "l1_ba": l1(fake_a, a), "l1_identity": l1(a, b),
        "cycle_l1": l1(cycled_a, a),
        "class_kept_ab": float((probs_fake_b.argmax(1) == labels).mean()),
        "class_kept_ba": float((probs_fake_a.argmax(1) == labels).mean()),
        "truth_class_kept": float((probs_b.argmax(1) == labels).mean()),
        "cfid_ab": fid(feats_fake_b, feats_b), "cfid_identity": fid(feats_a, feats_b),
    }


def translation_training_scores(config, generator_ab, generator_ba, log=print, n=2000):
    """translation_scores of the first n test images, for a cyclegan's history.csv."""
    images, labels = data.load(config.dataset, "test", data_dir=config.data_dir)
    scores = translation_scores(generator_ab, generator_ba, images[:n], labels[:n], config.transform,
                                _evaluator(config, log))
    return {key: round(value, 4) for key, value in scores.items() if isinstance(value, float)}
