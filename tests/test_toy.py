import numpy as np
import tensorflow as tf

from gan_tf import toy
from gan_tf.losses import gradient_penalty


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


def test_maxout_keeps_the_largest_piece_of_each_unit():
    layer = toy.Maxout(units=2, pieces=3)
    layer.build((None, 1))
    # Pieces of unit 0: x, 2x, -x; of unit 1: 0, -3x, 5 (weights, then a bias on the last piece).
    layer.linear.kernel.assign([[1.0, 2.0, -1.0, 0.0, -3.0, 0.0]])
    layer.linear.bias.assign([0.0, 0.0, 0.0, 0.0, 0.0, 5.0])
    out = layer(tf.constant([[1.0], [-2.0], [-4.0]])).numpy()
    np.testing.assert_allclose(out, [[2.0, 5.0], [2.0, 6.0], [4.0, 12.0]])


def test_the_papers_setting_builds_their_networks_and_trains():
    setting = dict(toy.PAPERS_SETTING)
    result = toy.train_toy(steps=5, snapshot_every=5, n_eval=50, **setting)
    generator, discriminator = result["generator"], result["discriminator"]
    assert sum(isinstance(layer, tf.keras.layers.BatchNormalization) for layer in generator.layers) == 4
    assert [layer.units for layer in discriminator.layers if isinstance(layer, toy.Maxout)] == [200, 200, 200]
    assert result["points"].shape == (50, 2) and np.isfinite(result["points"]).all()


def test_a_toy_wgan_trains_with_a_penalty_taken_per_point():
    result = toy.train_toy(steps=50, batch_size=64, snapshot_every=50, n_eval=100, learning_rate=1e-4,
                           beta_1=0.0, beta_2=0.9, wasserstein=dict(n_critic=5, gp_weight=10.0))
    assert len(result["history"]["wasserstein"]) == 1 and np.isfinite(result["history"]["wasserstein"]).all()
    # The penalty on 2-D points: one alpha per point, so a linear critic of unit slope costs nothing.
    critic = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1, use_bias=False)])
    critic.layers[0].kernel.assign([[0.6], [0.8]])
    real, fake = tf.random.normal((8, 2)), tf.random.normal((8, 2))
    alpha = tf.random.uniform((8, 1))
    assert float(gradient_penalty(critic, real, fake, alpha)) < 1e-6


def test_a_clipped_toy_critic_keeps_every_weight_inside_the_clip():
    result = toy.train_toy(steps=20, batch_size=64, snapshot_every=20, n_eval=100, learning_rate=5e-5,
                           optimizer="rmsprop", wasserstein=dict(n_critic=5, gp_weight=0.0, clip_value=0.01))
    weights = np.concatenate([w.numpy().ravel() for w in result["discriminator"].trainable_variables])
    assert np.abs(weights).max() <= 0.01 + 1e-7


def test_draw_points_puts_points_centres_and_their_coverage_on_the_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    toy.draw_points(ax, toy.ring_centres()[:3], "three centres")
    assert [len(c.get_offsets()) for c in ax.collections] == [3, toy.MODES]
    assert ax.get_title() == "three centres\n3/8 modes, 100.0 % high quality"
    plt.close("all")
