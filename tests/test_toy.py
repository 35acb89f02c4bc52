import numpy as np
import tensorflow as tf

from gan_tf import toy


def test_real_ring_samples_cover_all_modes_with_high_quality():
    points = toy.sample_ring(2500, np.random.default_rng(0))
    coverage = toy.mode_coverage(points)
    assert coverage["modes"] == 8
    # Within 3 standard deviations in 2-D: 1 - exp(-9/2) = 98.9 % of a Gaussian's mass.
    assert abs(coverage["high_quality"] - (1 - np.exp(-4.5))) < 0.006
    assert sum(coverage["counts"]) == round(coverage["high_quality"] * 2500)


def test_collapsed_and_scattered_points():
    one_mode = np.tile(toy.ring_centres()[3], (100, 1))
    assert toy.mode_coverage(one_mode) == {"modes": 1, "high_quality": 1.0,
                                           "counts": [0, 0, 0, 100, 0, 0, 0, 0]}
    origin = np.zeros((50, 2), np.float32)  # 1.0 away from every centre
    assert toy.mode_coverage(origin)["modes"] == 0
    assert toy.mode_coverage(origin)["high_quality"] == 0.0


def test_pack_joins_samples_pairwise():
    x = tf.reshape(tf.range(12, dtype=tf.float32), (6, 2))
    packed = toy.Pack(2)(x)
    assert packed.shape == (3, 4)
    np.testing.assert_array_equal(packed[1], [4, 5, 6, 7])
    assert toy.make_mlp_discriminator(pack=2)(x).shape == (3, 1)


def test_short_toy_run_returns_snapshots_and_coverage():
    result = toy.train_toy(steps=20, batch_size=64, snapshot_every=10, n_eval=100, pack=2)
    assert sorted(result["snapshots"]) == [0, 10, 20]
    assert result["points"].shape == (100, 2)
    assert result["coverage"] == toy.mode_coverage(result["points"])  # of the points it returns
    assert all(np.isfinite(result["history"]["d_loss"]))


def test_fitted_discriminator_approaches_the_optimal_one():
    rng = np.random.default_rng(0)
    real = rng.normal(0.0, 1.0, (20_000, 1)).astype(np.float32)
    fake = rng.normal(2.0, 1.0, (20_000, 1)).astype(np.float32)
    d = toy.fit_discriminator(real, fake, steps=400)
    x = np.array([[-1.0], [1.0], [3.0]], np.float32)
    # D*(x) = p(x) / (p(x) + q(x)) = sigmoid(2 - 2x) for N(0,1) vs N(2,1).
    optimal = 1 / (1 + np.exp(-(2 - 2 * x[:, 0])))
    trained = tf.sigmoid(d(x)).numpy()[:, 0]
    np.testing.assert_allclose(trained, optimal, atol=0.08)
