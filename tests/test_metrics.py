import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from gan_tf import metrics


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    d = 6
    mu = rng.normal(size=d)
    eye = np.eye(d)
    assert metrics.frechet_distance(mu, eye, mu, eye) == pytest.approx(0, abs=1e-9)
    # N(0, I) vs N(m, 4I): |m|^2 + tr(I + 4I - 2 * 2I) = |m|^2 + d.
    assert metrics.frechet_distance(np.zeros(d), eye, mu, 4 * eye) == pytest.approx(mu @ mu + d)
    a = rng.normal(size=(d, d))
    cov = a @ a.T
    assert metrics.frechet_distance(mu, cov, mu, cov) == pytest.approx(0, abs=1e-6)


def test_frechet_distance_is_finite_for_singular_covariances():
    rng = np.random.default_rng(1)
    low_rank = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 20))  # rank 2 in 20 dimensions
    cov = np.cov(low_rank, rowvar=False)
    value = metrics.frechet_distance(np.zeros(20), cov, np.ones(20), np.zeros((20, 20)))
    assert np.isfinite(value) and value >= 20  # at least the squared mean difference


def test_precision_and_recall_on_point_clouds():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(1000, 8))
    same = rng.normal(size=(1000, 8))
    precision, recall = metrics.precision_recall(real, same)
    assert precision > 0.8 and recall > 0.8  # k-NN balls of 1,000 points in 8-D miss a little
    far = rng.normal(size=(1000, 8)) + 50
    assert metrics.precision_recall(real, far) == (0.0, 0.0)
    # Fakes from one corner of the real cloud: realistic (precise) but missing most of it.
    corner = real[real[:, 0] > 1.0]
    corner_precision, corner_recall = metrics.precision_recall(real, corner)
    assert corner_precision == 1.0 and corner_recall < recall - 0.3


def test_density_and_coverage_on_point_clouds():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(2000, 8))
    density, coverage = metrics.density_coverage(real, rng.normal(size=(2000, 8)))
    assert 0.85 < density < 1.15 and coverage > 0.9  # the same distribution
    # Outliers: a tenth of the fakes far away lowers density by a tenth, no more.
    with_outliers = np.concatenate([rng.normal(size=(1800, 8)), rng.normal(size=(200, 8)) + 50])
    assert metrics.density_coverage(real, with_outliers)[0] == pytest.approx(0.9 * density, rel=0.1)
    # Collapse: every fake on one real point covers only that point's neighbourhood.
    collapsed_density, collapsed_coverage = metrics.density_coverage(real, np.repeat(real[:1], 2000, 0))
    assert collapsed_coverage < 0.01
    # A twentieth of the data plus scattered outliers: the outliers' own k-NN balls are huge and
    # swallow almost every real point, so recall says 0.94; coverage counts real balls and says ~0.2.
    corner_and_outliers = np.concatenate([real[:100], rng.normal(size=(100, 8)) * 30])
    assert metrics.precision_recall(real, corner_and_outliers)[1] > 0.9
    assert metrics.density_coverage(real, corner_and_outliers)[1] < 0.3


def test_spectral_excess_finds_a_checkerboard():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(200, 16, 16, 1)), axis=1), axis=2)  # little fine detail
    smooth /= np.abs(smooth).max()
    same = metrics.spectral_excess(smooth[:100], smooth[100:])
    assert np.abs(same).max() < 0.5  # one distribution against itself: no frequency off by 3x
    checker = np.indices((16, 16)).sum(0) % 2 * 0.2 - 0.1  # flips sign every pixel
    excess = metrics.spectral_excess(smooth[:100] + checker[None, :, :, None], smooth[100:])
    # after fftshift the highest frequency in both directions sits at index (0, 0)
    assert np.unravel_index(excess.argmax(), excess.shape) == (0, 0) and excess[0, 0] > 2
    assert np.abs(np.delete(excess.ravel(), 0)).max() < 0.5
    power = metrics.power_spectrum(np.ones((3, 8, 8, 3)))  # a flat image has no power once its mean is gone
    assert power.shape == (8, 8) and np.allclose(power, 0)


def test_intra_class_fid_sees_one_template_per_class():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(10), 200)
    real = rng.normal(size=(2000, 4)) + labels[:, None]
    same = rng.normal(size=(2000, 4)) + labels[:, None]
    templates = np.repeat(real[::200], 200, axis=0)  # one real point per class, 200 times
    varied = metrics.intra_class_fid(same, labels, real, labels)
    collapsed = metrics.intra_class_fid(templates, labels, real, labels)
    assert max(varied) < 0.2  # same distribution per class: near 0
    assert min(collapsed) > 3  # no variety: the trace of each class's covariance, about 4
    few = metrics.intra_class_fid(same[:15], labels[:15], real, labels)
    assert np.isfinite(few[0]) and all(np.isnan(few[1:]))  # under 10 images a class: not scored


def test_class_recall_sees_one_template_per_class_and_other_classes_styles():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(10), 200)
    real = rng.normal(size=(2000, 4)) + 3 * labels[:, None]
    same = rng.normal(size=(2000, 4)) + 3 * labels[:, None]
    templates = np.repeat(real[::200], 200, axis=0)  # one real point per class, 200 times
    assert min(metrics.class_recall(same, labels, real, labels)) > 0.8
    assert max(metrics.class_recall(templates, labels, real, labels)) < 0.05
    # Every class drawn in the style of the next one: the set as a whole still covers the data,
    # but no class covers its own images.
    shifted = np.roll(same, 200, axis=0)
    assert metrics.precision_recall(real, shifted)[1] > 0.8
    assert max(metrics.class_recall(shifted, labels, real, labels)) < 0.1  # neighbours overlap a little
    few = metrics.class_recall(same[:203], labels[:203], real, labels)  # class 1: 3 images
    assert np.isfinite(few[0]) and np.isnan(few[1]) and all(np.isnan(few[2:]))  # k or fewer: not scored


@pytest.mark.parametrize("images, assumed", [
    (np.zeros((3, 28, 28, 1), np.uint8), "uint8"),
    (np.full((3, 28, 28), 0.5, np.float32), "[0, 1]"),
    (np.full((3, 28, 28, 1), -0.5, np.float32), "[-1, 1]"),
])
def test_accepted_input_ranges(images, assumed):
    prepared, which = metrics.prepare_images(images)
    assert prepared.shape == (3, 28, 28, 1) and prepared.dtype == np.float32
    assert assumed in which
    assert prepared.min() >= -1 and prepared.max() <= 1


@pytest.mark.parametrize("images, message", [
    (np.zeros((3, 32, 32, 1), np.float32), "shape"),
    (np.zeros((0, 28, 28, 1), np.float32), "no images"),
    (np.full((2, 28, 28, 1), np.nan, np.float32), "NaN"),
    (np.full((2, 28, 28, 1), 7.0, np.float32), "pixel values span"),
])
def test_bad_inputs_are_refused(images, message):
    with pytest.raises(ValueError, match=message):
        metrics.prepare_images(images)


@pytest.fixture(scope="module")
def evaluator(real_data_dir, tmp_path_factory):
    """The MNIST evaluator with the shipped classifier; anything trained goes to a temporary cache."""
    import os

    cache = os.environ.get(metrics.CACHE_ENV) or str(tmp_path_factory.mktemp("cache"))
    os.environ[metrics.CACHE_ENV] = cache
    return metrics.Evaluator("mnist", real_data_dir)


def _measured_accuracy(model, dataset, data_dir):
    from gan_tf import data

    images, labels = data.load(dataset, "test", data_dir=data_dir)
    logits = model.predict(metrics.to_unit_range(images), batch_size=1000, verbose=0)
    return float((logits.argmax(1) == labels).mean())


@pytest.fixture(scope="module")
def real_train(real_data_dir):
    from gan_tf import data

    images, labels = data.load("mnist", "train", data_dir=real_data_dir)
    return metrics.to_unit_range(images[:2000]), labels[:2000]


def test_classifier_is_accurate(evaluator, real_data_dir):
    """The shipped classifier, measured again on the 10,000 test digits: its note tells the truth."""
    accuracy = _measured_accuracy(evaluator.classifier, "mnist", real_data_dir)
    assert accuracy >= metrics.REQUIRED_ACCURACY["mnist"]
    assert accuracy == pytest.approx(evaluator.accuracy, abs=1e-4)


def test_floor_and_ceiling(evaluator, real_train):
    images, _ = real_train
    real = evaluator.evaluate(images)
    assert real["classes_covered"] == 10
    assert real["inception_score"] > 9.0
    assert real["precision"] > 0.6 and real["recall"] > 0.6
    noise = evaluator.evaluate(np.random.default_rng(0).uniform(-1, 1, images.shape).astype(np.float32))
    assert noise["cfid"] > 50 * max(real["cfid"], 0.1)
    assert noise["precision"] < 0.05


def test_dropped_classes_lose_coverage_and_recall(evaluator, real_train):
    images, labels = real_train
    full = evaluator.evaluate(images)
    half = evaluator.evaluate(images[labels < 5])
    assert half["classes_covered"] == 5
    assert half["recall"] < full["recall"] - 0.2
    assert half["cfid"] > full["cfid"]
    assert half["kl_to_uniform"] > 0.5  # close to log 2 for five equal classes


def test_one_template_per_class_is_caught_where_label_accuracy_is_perfect(evaluator, real_train):
    """The cGAN failure of issue 16: each class drawn as one digit, 200 times over."""
    images, labels = real_train
    order = np.argsort(labels, kind="stable")
    images, labels = images[order], labels[order]
    firsts = np.searchsorted(labels, np.arange(10))
    templates = np.repeat(images[firsts], np.bincount(labels), axis=0)
    real, collapsed = evaluator.evaluate(images, labels=labels), evaluator.evaluate(templates, labels=labels)
    assert evaluator.label_accuracy(templates, labels) == 1.0  # blind to it
    assert collapsed["intra_cfid_mean"] > 10 * real["intra_cfid_mean"]
    assert collapsed["coverage"] < 0.1 * real["coverage"] and collapsed["classes_covered"] == 10
    assert real["class_recall_mean"] > 0.5 and collapsed["class_recall_mean"] < 0.05
    assert real["intra_cfid_by"] == "given labels"
    # Without labels the classifier's are used; for real digits they are almost all the same.
    assert evaluator.evaluate(images)["intra_cfid_mean"] == pytest.approx(real["intra_cfid_mean"], rel=0.1)


def test_blur_loses_precision_and_density(evaluator, real_train):
    import tensorflow as tf

    images, _ = real_train
    blurred = tf.nn.conv2d(images, tf.ones((5, 5, 1, 1)) / 25.0, strides=1, padding="SAME").numpy()
    sharp, soft = evaluator.evaluate(images), evaluator.evaluate(blurred)
    assert soft["precision"] < sharp["precision"] - 0.2
    assert 0.7 < sharp["density"] < 1.3  # real digits: about 1
    assert soft["density"] < 0.5 * sharp["density"]


def test_same_input_same_numbers(evaluator, real_train):
    images, _ = real_train
    assert evaluator.evaluate(images[:500]) == evaluator.evaluate(images[:500])


def test_evaluate_command(tmp_path, evaluator, real_train):
    images, labels = real_train
    np.save(tmp_path / "good.npy", images[:300])
    np.save(tmp_path / "good.labels.npy", labels[:300])
    run = lambda *a: subprocess.run([sys.executable, "-m", "gan_tf", "evaluate", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    result = run(tmp_path / "good.npy", "--dataset", "mnist", "--labels", tmp_path / "good.labels.npy")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    expected = evaluator.evaluate(images[:300], labels=labels[:300])
    assert scores["n"] == 300 and "[-1, 1]" in scores["assumed_input"]
    for key in ("cfid", "precision", "density", "coverage", "intra_cfid_mean", "class_recall_mean"):
        assert scores[key] == pytest.approx(expected[key], rel=1e-4), key
    assert scores["intra_cfid_by"] == "given labels"
    result = run(tmp_path / "good.npy", "--labels", tmp_path / "bad_labels.npy")
    assert result.returncode == 2 and "bad_labels.npy does not exist" in result.stderr
    np.save(tmp_path / "short.labels.npy", labels[:10])
    result = run(tmp_path / "good.npy", "--labels", tmp_path / "short.labels.npy")
    assert result.returncode == 2 and "one class per image: 300 images" in result.stderr
    np.save(tmp_path / "bad.npy", np.zeros((4, 32, 32)))
    result = run(tmp_path / "bad.npy")
    assert result.returncode == 2 and "shape" in result.stderr
    (tmp_path / "junk.npy").write_text("not an array")
    result = run(tmp_path / "junk.npy")
    assert result.returncode == 2 and "not a readable .npy" in result.stderr


def test_fashion_mnist_classifier_is_accurate(evaluator, real_data_dir):
    model, noted = metrics.load_classifier("fashion_mnist", real_data_dir)
    accuracy = _measured_accuracy(model, "fashion_mnist", real_data_dir)
    assert accuracy >= metrics.REQUIRED_ACCURACY["fashion_mnist"]
    assert accuracy == pytest.approx(noted, abs=1e-4)


@pytest.fixture
def no_shipped_classifier(tmp_path, monkeypatch):
    """load_classifier as on a machine whose gan_tf came without classifiers; a fresh cache."""
    monkeypatch.setattr(metrics, "SHIPPED_DIR", tmp_path / "shipped")
    monkeypatch.setenv(metrics.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setitem(metrics.CLASSIFIER_EPOCHS, "mnist", 1)
    return tmp_path / "cache"


def test_without_a_shipped_classifier_one_is_trained_once_and_cached(no_shipped_classifier, fake_data,
                                                                     monkeypatch):
    root, _ = fake_data
    monkeypatch.setitem(metrics.REQUIRED_ACCURACY, "mnist", 0.0)  # fake data: labels are noise
    said = []
    model, accuracy = metrics.load_classifier("mnist", root, log=said.append)
    assert any("training the mnist evaluation classifier" in line for line in said)
    assert (no_shipped_classifier / "classifier_mnist.weights.h5").is_file()
    said.clear()
    again, noted = metrics.load_classifier("mnist", root, log=said.append)
    assert said == [] and noted == accuracy  # loaded, not retrained
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_classifier_too_weak_to_trust_is_refused_and_not_cached(no_shipped_classifier, fake_data):
    root, _ = fake_data  # random pixels and labels: nobody can reach 99 % on them
    with pytest.raises(RuntimeError, match="its scores would mislead"):
        metrics.load_classifier("mnist", root, log=lambda line: None)
    assert not (no_shipped_classifier / "classifier_mnist.weights.h5").exists()


def test_a_damaged_shipped_classifier_is_passed_over(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    weights, info = metrics.classifier_files(shipped, "mnist")
    weights.write_bytes(b"not an HDF5 file")
    info.write_text('{"test_accuracy": 0.99}')
    monkeypatch.setattr(metrics, "SHIPPED_DIR", shipped)
    monkeypatch.setenv(metrics.CACHE_ENV, str(tmp_path / "cache"))
    good = metrics.make_classifier()
    metrics.save_classifier(good, 0.995, tmp_path / "cache", "mnist")
    said = []
    model, accuracy = metrics.load_classifier("mnist", log=said.append)
    assert accuracy == 0.995 and "unreadable" in said[0] and str(weights) in said[0]
    np.testing.assert_array_equal(model.weights[0].numpy(), good.weights[0].numpy())


def _scores_again(run_dir, config, evaluator):
    """The scores of 2,000 samples from a finished run's generator.keras, measured here."""
    from gan_tf.sampling import balanced_labels, generate

    generator = keras.models.load_model(run_dir / "generator.keras")
    labels = balanced_labels(2000) if config.model == "cgan" else None
    images = generate(generator, 2000, seed=config.seed, labels=labels)
    scores = evaluator.evaluate(images)
    if labels is not None:
        scores["label_accuracy"] = evaluator.label_accuracy(images, labels)
    return scores


def test_training_measures_quality_every_k_epochs(tmp_path, evaluator):
    """history.csv's scores are those of the generator the run samples from (the moving
    average, saved as generator.keras), measured at the epochs asked for."""
    from gan_tf.config import TrainConfig
    from gan_tf.train import read_history, train

    config = TrainConfig(epochs=2, batch_size=64, limit=256, grid_size=4, eval_every=2)
    train(config, tmp_path, verbose=0)
    history = read_history(tmp_path / "history.csv")
    assert np.isnan(history["cfid"][0])  # measured at epoch 2 only
    again = _scores_again(tmp_path, config, evaluator)
    compared = [key for key in metrics.QUALITY_KEYS if key not in ("kid", "fd")]  # those two: image folders
    for key in compared:
        assert history[key][1] == pytest.approx(again[key], rel=1e-3, abs=1e-3), key


def test_conditional_training_logs_label_accuracy(tmp_path, evaluator):
    from gan_tf.config import TrainConfig
    from gan_tf.train import train

    config = TrainConfig(model="cgan", epochs=1, batch_size=64, limit=256)
    assert config.eval_every == 1  # cgan measures every epoch unless told otherwise
    history = train(config, tmp_path, verbose=0)
    again = _scores_again(tmp_path, config, evaluator)
    assert history["label_accuracy"][0] == pytest.approx(again["label_accuracy"], abs=1e-3)
    assert history["cfid"][0] == pytest.approx(again["cfid"], rel=1e-3)


def test_label_accuracy_counts_matching_classes(evaluator, real_train):
    images, labels = real_train
    assert evaluator.label_accuracy(images, labels) > 0.98
    # Shifting every label by one makes almost every answer wrong.
    assert evaluator.label_accuracy(images, (labels + 1) % 10) < 0.05
