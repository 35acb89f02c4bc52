import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from gan_tf import train as train_module
from gan_tf.config import ConfigError, TrainConfig
from gan_tf.train import CheckpointError, TrainingDiverged, read_history, train

pytestmark = pytest.mark.usefixtures("real_data_dir")


def small(**overrides):
    """256 MNIST images in batches of 64: four steps an epoch (no XLA on any machine)."""
    settings = dict(epochs=2, batch_size=64, limit=256, grid_size=16, log_every=2, jit_compile=False)
    return TrainConfig(**{**settings, **overrides})


def _saved_epoch(run_dir):
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints"))
    return int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def _generator_weights(run_dir):
    return [w.numpy() for w in train_module.load_generator(run_dir).weights]


def _wrap_training_step(monkeypatch, wrapper):
    """Route every training step of train() through ``wrapper(n, step, checkpoint, batch)``,
    n counting calls from 1: the compiled step itself cannot raise or be poisoned from Python."""
    real_make_step, calls = train_module.make_step, []

    def make_step(config, strategy=None):
        step = real_make_step(config, strategy)

        def wrapped(checkpoint, batch):
            calls.append(1)
            return wrapper(len(calls), step, checkpoint, batch)
        return wrapped

    monkeypatch.setattr(train_module, "make_step", make_step)


def _interrupt_at_call(monkeypatch, n, exception):
    """Make the n-th training step raise, as Ctrl-C (or a diverging loss) would mid-epoch."""
    def wrapper(call, step, checkpoint, batch):
        if call == n:
            raise exception
        return step(checkpoint, batch)

    _wrap_training_step(monkeypatch, wrapper)


def test_run_directory_layout(tmp_path):
    history = train(small(), tmp_path, verbose=0)
    assert history["epoch"] == [1, 2]
    assert all(np.isfinite(history[k]).all() for k in ("d_loss", "g_loss", "seconds"))
    for name in ("samples/epoch_001.png", "samples/epoch_002.png", "progress.gif",
                 "generator.keras", "config.json", "checkpoints/checkpoint"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "config.json").read_text())["limit"] == 256
    steps = read_history(tmp_path / "steps.csv")
    assert steps["step"] == [2, 4, 6, 8] and steps["epoch"] == [1, 1, 2, 2]
    from PIL import Image

    # 4 steps an epoch, 4 frames per epoch by default: steps 1, 2, 3 and the epoch's grid.
    assert len(list((tmp_path / "frames").glob("epoch_00?_step_0000?.png"))) == 2 * 3
    assert Image.open(tmp_path / "progress.gif").n_frames == 2 * 4
    assert _saved_epoch(tmp_path) == 2
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    tags = {v.tag for e in events for r in tf.compat.v1.train.summary_iterator(str(e))
            for v in r.summary.value}
    assert {"d_loss", "g_loss", "samples"} <= tags


def test_conditional_run_has_a_row_per_class_and_samples_a_chosen_class(tmp_path):
    from PIL import Image

    from gan_tf import plots

    history = train(small(model="cgan", epochs=1, eval_every=0), tmp_path, verbose=0)
    assert history["epoch"] == [1]
    grid = np.array(Image.open(tmp_path / "samples" / "epoch_001.png"))
    ten_by_ten = plots.image_grid(np.zeros((100, 28, 28, 1)), cols=10)
    assert grid.shape == (2 * ten_by_ten.shape[0], 2 * ten_by_ten.shape[1])
    generator = train_module.load_generator(tmp_path)
    images = train_module.generate(generator, 5, labels=3)
    assert images.shape == (5, 28, 28, 1)
    with pytest.raises(ValueError, match="label 10 is not a class.*0 to 9"):
        train_module.generate(generator, 5, labels=10)


def test_an_unconditional_generator_cannot_be_asked_for_a_class(tmp_path):
    train(small(epochs=1), tmp_path, verbose=0)
    with pytest.raises(ValueError, match="unconditional"):
        train_module.generate(train_module.load_generator(tmp_path), 4, labels=1)


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A finished one-epoch dcgan run that the tests below only read (or are refused to change)."""
    run_dir = tmp_path_factory.mktemp("one_epoch")
    train(small(epochs=1, log_every=1), run_dir, verbose=0)
    return run_dir


@pytest.mark.parametrize("change, listed", [
    (dict(seed=1), "seed: saved 0, now 1"),
    (dict(batch_size=32), "batch_size: saved 64, now 32"),
    (dict(limit=320), "limit: saved 256, now 320"),
    (dict(learning_rate=1e-3), "learning_rate: saved 0.0002, now 0.001"),
    (dict(generator_loss="saturating"), "generator_loss: saved 'non_saturating', now 'saturating'"),
    (dict(jit_compile=True), "jit_compile: saved False, now True"),
    (dict(ema_decay=0.99), "ema_decay: saved 0.999, now 0.99"),
    (dict(d_learning_rate=4e-4), "d_learning_rate: saved None, now 0.0004"),
    (dict(spectral_norm=True, d_dropout=0.0),
     "spectral_norm: saved False, now True; d_dropout: saved 0.3, now 0.0"),
    (dict(r1_weight=1.0), "r1_weight: saved 0.0, now 1.0"),
    (dict(categories=10), "categories: saved 0, now 10"),
    (dict(width=32), "width: saved None, now 32"),
    (dict(ema_decay=0.0, latent_dim=64), "latent_dim: saved 100, now 64; ema_decay: saved 0.999, now 0.0"),
])
def test_resume_refuses_every_changed_setting_and_keeps_the_record(one_epoch_run, change, listed):
    saved = (one_epoch_run / "config.json").read_text()
    may_change = "only epochs, eval_every, log_every, frames_per_epoch, data_dir and strategy may change"
    with pytest.raises(ConfigError, match=may_change) as err:
        train(small(epochs=2, **change), one_epoch_run, verbose=0)
    assert listed in str(err.value)
    assert (one_epoch_run / "config.json").read_text() == saved
    assert read_history(one_epoch_run / "history.csv")["epoch"] == [1]


def test_resume_may_raise_the_epochs_and_change_what_is_measured(tmp_path):
    first = small(epochs=1)
    train(first, tmp_path, verbose=0)
    later = small(epochs=2, eval_every=0, log_every=1, jit_compile=None)  # XLA left to the saved run
    history = train(later, tmp_path, verbose=0)
    assert history["epoch"] == [1, 2]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["log_every"] == 2 and saved["jit_compile"] is False
    assert later.jit_compile is None and first.epochs == 1  # train() changed neither config


def test_a_run_saved_under_an_older_recipe_resumes_with_its_own_settings(one_epoch_run, tmp_path):
    """one_epoch_run trained dcgan at batch 64, the recipe before batch 16: a resume that leaves the
    batch to the recipe continues at 64; one that asks for 16 is refused, naming both."""
    import shutil

    from gan_tf.config import MODEL_DEFAULTS

    assert MODEL_DEFAULTS["dcgan"]["batch_size"] != 64
    run_dir = tmp_path / "run"
    shutil.copytree(one_epoch_run, run_dir)
    left_to_recipe = small(epochs=2, batch_size=None)
    assert left_to_recipe.batch_size == MODEL_DEFAULTS["dcgan"]["batch_size"]
    history = train(left_to_recipe, run_dir, verbose=0)
    assert history["epoch"] == [1, 2]
    assert json.loads((run_dir / "config.json").read_text())["batch_size"] == 64
    assert read_history(run_dir / "steps.csv")["step"][-1] == 8  # 256 images: 4 steps of 64 an epoch
    with pytest.raises(ConfigError, match="batch_size: saved 64, now 16"):
        train(small(epochs=3, batch_size=16), run_dir, verbose=0)


def test_progress_gif_has_frames_inside_each_epoch_and_drops_those_of_a_killed_epoch(tmp_path):
    from PIL import Image

    train(small(epochs=2, frames_per_epoch=2), tmp_path, verbose=0)  # 4 steps an epoch: a frame at step 2
    frames = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert frames == ["epoch_001_step_00002.png", "epoch_002_step_00002.png"]
    assert Image.open(tmp_path / "progress.gif").n_frames == 4
    stale = tmp_path / "frames" / "epoch_004_step_00001.png"  # as if a run had been killed in epoch 4
    stale.write_bytes((tmp_path / "frames" / frames[0]).read_bytes())
    train(small(epochs=3, frames_per_epoch=4), tmp_path, verbose=0)  # may change on a resume
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "frames").glob("epoch_003_*")) == [
        "epoch_003_step_00001.png", "epoch_003_step_00002.png", "epoch_003_step_00003.png"]
    assert Image.open(tmp_path / "progress.gif").n_frames == 2 * 2 + 4


def test_a_run_saved_before_a_setting_existed_is_compared_with_what_it_trained_with():
    """An older gan_tf wrote no mode_seeking or label_channel: its cgan had neither change."""
    import dataclasses

    from gan_tf.config import resumed

    old = {k: v for k, v in dataclasses.asdict(TrainConfig(model="cgan")).items()
           if k not in ("mode_seeking", "label_channel")}
    as_before = TrainConfig(model="cgan", mode_seeking=0.0, label_channel=True)
    assert resumed(as_before, old, "RUN") == as_before
    clash = "mode_seeking: saved 0.0, now 0.5; label_channel: saved True, now False"
    with pytest.raises(ConfigError, match=clash):
        resumed(TrainConfig(model="cgan", mode_seeking=0.5, label_channel=False), old, "RUN")


def _saved_run(run_dir, settings):
    """A run directory as train() leaves it, as far as train.settings() looks: config.json and a
    checkpoint index (settings() only asks whether one exists)."""
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "ckpt-1.index").touch()
    (run_dir / "config.json").write_text(json.dumps(settings))


def test_the_mnist_cgan_trains_d_at_twice_g_rate_and_an_older_cgan_run_keeps_its_own(tmp_path):
    """TTUR is the cgan recipe on MNIST only. A cgan run saved before it (d_learning_rate None:
    D at G's rate) resumes at G's rate, through every copy train() makes of its settings."""
    import dataclasses

    from gan_tf.checkpoints import build
    from gan_tf.config import resumed

    assert TrainConfig(model="cgan").d_learning_rate == 4e-4
    assert TrainConfig(model="cgan", dataset="MNIST").d_learning_rate == 4e-4
    assert TrainConfig(model="cgan", dataset="fashion-mnist").d_learning_rate is None
    assert TrainConfig(model="dcgan").d_learning_rate is None
    assert TrainConfig(model="cgan", d_learning_rate=3e-4).d_learning_rate == 3e-4
    old = {**dataclasses.asdict(small(model="cgan")), "d_learning_rate": None}
    _saved_run(tmp_path, old)
    config = train_module.settings(small(model="cgan", batch_size=None), tmp_path)
    assert config.d_learning_rate is None and config.batch_size == 64
    state = build(config)
    assert float(state.d_optimizer.learning_rate) == pytest.approx(2e-4)
    before_ttur_existed = {k: v for k, v in old.items() if k != "d_learning_rate"}
    assert resumed(small(model="cgan"), before_ttur_existed, "RUN").d_learning_rate is None
    with pytest.raises(ConfigError, match="d_learning_rate: saved None, now 0.0004"):
        resumed(small(model="cgan", d_learning_rate=4e-4), old, "RUN")


def test_the_cgan_has_no_dropout_in_d_and_an_older_cgan_run_keeps_its_dropout(tmp_path):
    """No dropout in D is the cgan recipe on both datasets; the dcgan keeps 0.3. A cgan run saved
    with dropout 0.3, or before d_dropout was saved at all, resumes with its dropout layers."""
    import dataclasses

    from gan_tf.checkpoints import build
    from gan_tf.config import resumed

    for dataset in ("mnist", "fashion_mnist"):
        assert TrainConfig(model="cgan", dataset=dataset).d_dropout == 0.0
    assert TrainConfig(model="dcgan").d_dropout == 0.3
    assert TrainConfig(model="cgan", d_dropout=0.25).d_dropout == 0.25

    def dropout_layers(config):
        return [layer.rate for layer in build(config).discriminator.layers if "dropout" in layer.name]

    assert dropout_layers(small(model="cgan").validate()) == []
    old = {**dataclasses.asdict(small(model="cgan")), "d_dropout": 0.3}
    _saved_run(tmp_path, old)
    config = train_module.settings(small(model="cgan"), tmp_path)
    assert config.d_dropout == 0.3 and dropout_layers(config) == [0.3, 0.3]
    before_it_was_saved = {k: v for k, v in old.items() if k != "d_dropout"}
    assert resumed(small(model="cgan"), before_it_was_saved, "RUN").d_dropout == 0.3
    with pytest.raises(ConfigError, match="d_dropout: saved 0.3, now 0.0"):
        resumed(small(model="cgan", d_dropout=0.0), old, "RUN")


def test_a_run_saved_before_the_discriminator_settings_existed_keeps_its_discriminator():
    """Older runs wrote no spectral_norm, d_dropout or r1_weight: a dcgan's D had dropout 0.3,
    a WGAN critic none, and neither was normalised or penalised at real images."""
    import dataclasses

    from gan_tf.config import resumed

    def saved_by_older_gan_tf(model):
        return {k: v for k, v in dataclasses.asdict(TrainConfig(model=model)).items()
                if k not in ("spectral_norm", "d_dropout", "r1_weight")}

    for model, dropout in (("dcgan", 0.3), ("wgan_gp", 0.0)):
        config = resumed(TrainConfig(model=model), saved_by_older_gan_tf(model), "RUN")
        assert (config.d_dropout, config.spectral_norm, config.r1_weight) == (dropout, False, 0.0)
    clash = "spectral_norm: saved False, now True; d_dropout: saved 0.3, now 0.0"
    with pytest.raises(ConfigError, match=clash):
        resumed(TrainConfig(spectral_norm=True, d_dropout=0.0), saved_by_older_gan_tf("dcgan"), "RUN")


def test_spectral_norm_and_r1_train_and_resume(tmp_path):
    """D's power-iteration vectors are part of the checkpoint, so a run with them resumes."""
    settings = dict(spectral_norm=True, d_dropout=0.0, r1_weight=1.0)
    train(small(epochs=1, **settings), tmp_path, verbose=0)
    history = train(small(epochs=2, **settings), tmp_path, verbose=0)
    assert history["epoch"] == [1, 2] and np.isfinite(history["d_loss"]).all()
    shapes = tf.train.load_checkpoint(str(tmp_path / "checkpoints")).get_variable_to_shape_map()
    assert sorted(shape for key, shape in shapes.items() if "vector_u" in key and "discriminator" in key
                  and "OPTIMIZER" not in key) == [[1, 1], [1, 64], [1, 128]]


def test_width_scales_the_tutorial_networks_and_a_run_resumes_at_its_own_width(tmp_path):
    from gan_tf import models
    from gan_tf.checkpoints import build

    tutorial = build(small().validate())  # no width: the tutorial's networks, w = 64
    assert tutorial.generator.count_params() == models.make_generator(widths=(256, 128, 64)).count_params()
    assert tutorial.discriminator.count_params() == models.make_discriminator(widths=(64, 128)).count_params()
    narrow_g = models.make_generator(widths=(128, 64, 32)).count_params()
    narrow_d = models.make_discriminator(widths=(32, 64)).count_params()
    narrow = build(small(width=32).validate())
    assert (narrow.generator.count_params(), narrow.discriminator.count_params()) == (narrow_g, narrow_d)
    train(small(epochs=1, width=32), tmp_path, verbose=0)
    history = train(small(epochs=2), tmp_path, verbose=0)  # no --width: the run keeps its own
    assert history["epoch"] == [1, 2] and json.loads((tmp_path / "config.json").read_text())["width"] == 32
    assert train_module.load_generator(tmp_path).count_params() == narrow_g


def test_a_run_killed_before_its_first_checkpoint_starts_over_with_new_settings(tmp_path):
    train(small(epochs=1), tmp_path, verbose=0)
    for path in (tmp_path / "checkpoints").iterdir():
        path.unlink()
    train(small(epochs=1, seed=5), tmp_path, verbose=0)
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 5


def test_saturating_loss_reaches_the_step(tmp_path, one_epoch_run):
    """-log D(G(z)) is positive for every logit and log(1 - D(G(z))) negative: the sign of the
    logged g_loss shows which loss the step minimised."""
    train(small(epochs=1, generator_loss="saturating", log_every=1), tmp_path, verbose=0)
    for run_dir, sign in ((tmp_path, -1), (one_epoch_run, 1)):  # the second: non_saturating
        g_losses = np.array(read_history(run_dir / "steps.csv")["g_loss"])
        assert len(g_losses) == 4 and (sign * g_losses > 0).all(), (run_dir, g_losses)


def test_two_time_scales_give_the_discriminator_its_own_learning_rate():
    from gan_tf.checkpoints import build

    for config, rates in [(small(), (2e-4, 2e-4)),
                          (small(d_learning_rate=4e-4, learning_rate=1e-4), (1e-4, 4e-4)),
                          (small(model="cyclegan", batch_size=16, d_learning_rate=3e-4), (2e-4, 3e-4))]:
        state = build(config.validate())
        learning_rates = [float(opt.learning_rate) for opt in (state.g_optimizer, state.d_optimizer)]
        assert learning_rates == pytest.approx(rates)
        if config.model == "cyclegan":  # both discriminators, both generators
            assert float(state.d_a_optimizer.learning_rate) == pytest.approx(rates[1])
            assert float(state.g_ba_optimizer.learning_rate) == pytest.approx(rates[0])


def test_lr_decay_lowers_every_rate_in_the_second_half_and_a_resumed_run_continues_it(tmp_path, monkeypatch):
    # Constant for the first half of the run, then a straight line down to rate / half at the end.
    assert [train_module.decayed_rate(2e-4, step, 8) / 2e-4 for step in range(1, 9)] == pytest.approx(
        [1, 1, 1, 1, 1, 3 / 4, 2 / 4, 1 / 4])
    seen = []  # (G's rate, D's rate) as each step runs

    def wrapper(call, step, state, batch):
        if call == 7:  # step 3 of epoch 2: the run is interrupted
            raise KeyboardInterrupt
        seen.append(tuple(float(opt.learning_rate) for opt in (state.g_optimizer, state.d_optimizer)))
        return step(state, batch)

    _wrap_training_step(monkeypatch, wrapper)
    config = small(lr_decay=True, d_learning_rate=4e-4, eval_every=0)  # 2 epochs of 4 steps
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path, verbose=0)
    train(config, tmp_path, verbose=0)  # the same command again: resumes at epoch 2, step 1 (call 7 is past)
    fraction_left = [1, 1, 1, 1, 1, 3 / 4, 1, 3 / 4, 2 / 4, 1 / 4]  # epoch 2 again from its first step
    assert [g for g, _ in seen] == pytest.approx([2e-4 * f for f in fraction_left])
    assert [d for _, d in seen] == pytest.approx([4e-4 * f for f in fraction_left])
    assert read_history(tmp_path / "history.csv")["epoch"] == [1, 2]
    # The rate reached ~0 at the last step of epoch 2: a longer run would bend the schedule.
    with pytest.raises(ConfigError, match="falls to 0 at the saved last epoch"):
        train(small(lr_decay=True, d_learning_rate=4e-4, eval_every=0, epochs=3), tmp_path, verbose=0)
    assert read_history(tmp_path / "history.csv")["epoch"] == [1, 2]


def test_generator_keras_holds_the_moving_average(one_epoch_run):
    saved = tf.keras.models.load_model(one_epoch_run / "generator.keras")
    state = train_module.build(small())
    state.restore(tf.train.latest_checkpoint(str(one_epoch_run / "checkpoints"))).expect_partial()
    for w_saved, w_average in zip(saved.weights, state.ema_generator.weights):
        np.testing.assert_array_equal(w_saved.numpy(), w_average.numpy())
    trained = np.concatenate([w.numpy().ravel() for w in state.generator.trainable_weights])
    average = np.concatenate([w.numpy().ravel() for w in state.ema_generator.trainable_weights])
    assert not np.allclose(trained, average)


@pytest.mark.parametrize("model", ["dcgan", "cgan", "wgan_gp"])
def test_interrupted_run_resumes_to_the_same_end(tmp_path, monkeypatch, capsys, model):
    """Dropout masks (dcgan, cgan's discriminator), labels (cgan), critic steps and the
    penalty's random weights (wgan_gp) all continue as in an uninterrupted run."""
    settings = dict(model=model, eval_every=0) if model != "wgan_gp" else dict(
        model=model, batch_size=16, n_critic=2, limit=128)  # 4 steps of 2 x 16 per epoch
    straight = train(small(**settings), tmp_path / "straight", verbose=0)
    steps_per_epoch = 4

    _interrupt_at_call(monkeypatch, steps_per_epoch + 2, KeyboardInterrupt())  # step 2 of epoch 2
    with pytest.raises(KeyboardInterrupt):
        train(small(**settings), tmp_path / "stopped", verbose=1)
    assert "interrupted during epoch 2" in capsys.readouterr().out
    assert read_history(tmp_path / "stopped" / "history.csv")["epoch"] == [1]
    assert _saved_epoch(tmp_path / "stopped") == 1
    assert not (tmp_path / "stopped" / "generator.keras").exists()

    monkeypatch.undo()
    resumed = train(small(**settings), tmp_path / "stopped", verbose=1)
    assert "resumed from epoch 1" in capsys.readouterr().out
    assert resumed["epoch"] == straight["epoch"] == [1, 2]
    assert _saved_epoch(tmp_path / "stopped") == _saved_epoch(tmp_path / "straight") == 2
    # Seeds, noise stream and shuffling are all restored, so the resumed run is the same run.
    np.testing.assert_allclose(resumed["d_loss"], straight["d_loss"], rtol=1e-4)
    steps = [read_history(tmp_path / d / "steps.csv") for d in ("stopped", "straight")]
    assert steps[0]["step"] == steps[1]["step"] == list(range(2, 2 * steps_per_epoch + 1, 2))
    np.testing.assert_allclose(steps[0]["g_loss"], steps[1]["g_loss"], rtol=1e-4)
    for a, b in zip(_generator_weights(tmp_path / "stopped"), _generator_weights(tmp_path / "straight")):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_extra_history_row_without_checkpoint_is_dropped(tmp_path, capsys):
    """A kill between writing history.csv and the checkpoint leaves a row that must not count."""
    train(small(epochs=1), tmp_path, verbose=0)
    with open(tmp_path / "history.csv", "a", newline="") as f:
        csv.writer(f).writerow([2, 9.9, 9.9, 1.0, 1.0])
    history = train(small(epochs=2), tmp_path, verbose=0)
    assert history["epoch"] == [1, 2] and history["d_loss"][1] != 9.9


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    def poisoned(call, step, checkpoint, batch):
        losses = step(checkpoint, batch)
        return {**losses, "g_loss": tf.constant(np.nan)} if call == 7 else losses

    _wrap_training_step(monkeypatch, poisoned)
    with pytest.raises(TrainingDiverged, match=r"g_loss became nan at epoch 2, step 3.*keeps epoch 1"):
        train(small(), tmp_path, verbose=0)
    assert _saved_epoch(tmp_path) == 1
    assert read_history(tmp_path / "history.csv")["epoch"] == [1]


def test_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    train(small(), tmp_path, verbose=0)
    data_file = tmp_path / "checkpoints" / "ckpt-2.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:1000])
    history = train(small(epochs=3), tmp_path, verbose=1)
    out = capsys.readouterr().out
    assert "skipped damaged checkpoint" in out and "ckpt-2" in out
    assert "resumed from epoch 1" in out
    assert history["epoch"] == [1, 2, 3]


def test_damaged_checkpoint_index_is_rebuilt_from_the_files(tmp_path, capsys):
    train(small(epochs=1), tmp_path, verbose=0)
    (tmp_path / "checkpoints" / "checkpoint").write_text("\x00garbage{{{")
    history = train(small(), tmp_path, verbose=1)
    assert "resumed from epoch 1" in capsys.readouterr().out
    assert history["epoch"] == [1, 2]


def test_unusable_checkpoints_are_an_error_and_are_kept(tmp_path):
    train(small(epochs=1), tmp_path, verbose=0)
    data_file = tmp_path / "checkpoints" / "ckpt-1.data-00000-of-00001"
    data_file.write_bytes(b"")
    with pytest.raises(CheckpointError, match="(?s)no usable checkpoint.*new --out"):
        train(small(), tmp_path, verbose=0)
    assert data_file.exists() and (tmp_path / "checkpoints" / "ckpt-1.index").exists()
    assert read_history(tmp_path / "history.csv")["epoch"] == [1]


def test_nothing_to_do_when_already_trained(tmp_path, capsys):
    train(small(epochs=2), tmp_path, verbose=0)
    history = train(small(epochs=1), tmp_path, verbose=1)
    assert "already has 2 epochs" in capsys.readouterr().out
    assert history["epoch"] == [1, 2]


@pytest.mark.parametrize("overrides, message", [
    (dict(epochs=0), "epochs must be at least 1"),
    (dict(batch_size=0), "batch_size must be at least 1"),
    (dict(batch_size=300, limit=256), "batch_size 300 is larger than the 256"),
    (dict(batch_size=70_000, limit=None), "larger than the 60000"),
    (dict(dataset="cifar10"), "unknown dataset"),
    (dict(model="stylegan"), "unknown model"),
    (dict(learning_rate=-1.0), "learning_rate must be a positive"),
    (dict(d_learning_rate=0.0), "d_learning_rate must be a positive"),
    (dict(beta_1=1.0), r"beta_1 must be in \[0, 1\)"),
    (dict(generator_loss="hinge"), "unknown generator loss"),
    (dict(ema_decay=1.0), r"ema_decay must be in \[0, 1\)"),
    (dict(mode_seeking=-1.0), "mode_seeking must be a number >= 0"),
    (dict(model="wgan_gp", mode_seeking=1.0), "mode_seeking is for dcgan and cgan"),
    (dict(model="wgan", spectral_norm=True), "spectral_norm is for dcgan, cgan and wgan_gp"),
    (dict(d_dropout=1.0), r"d_dropout must be in \[0, 1\)"),
    (dict(model="wgan_gp", d_dropout=0.3), "d_dropout is for dcgan and cgan"),
    (dict(r1_weight=-1.0), "r1_weight must be a number >= 0"),
    (dict(model="wgan_gp", r1_weight=1.0), "r1_weight is for dcgan and cgan"),
    (dict(model="cgan", categories=10), "categories .an InfoGAN code. is for dcgan; cgan has class labels"),
    (dict(categories=1), "categories must be 0 .off. or between 2 and latent_dim"),
    (dict(categories=20, latent_dim=16), "between 2 and latent_dim .16."),
])
def test_impossible_settings_are_refused_before_work(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(small(**overrides), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_progress_pictures_sort_by_epoch_then_step_past_epoch_999(tmp_path):
    from gan_tf.train import frame_time, gif_frames

    (tmp_path / "samples").mkdir()
    (tmp_path / "frames").mkdir()
    names = ["samples/epoch_999.png", "frames/epoch_1000_step_00002.png", "samples/epoch_1000.png",
             "frames/epoch_999_step_00010.png", "frames/epoch_1001_step_00001.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert frame_time(tmp_path / "frames/epoch_1000_step_00002.png") == (1000, 2)
    order = [p.relative_to(tmp_path).as_posix() for p in gif_frames(tmp_path, last_epoch=1000)]
    assert order == ["frames/epoch_999_step_00010.png", "samples/epoch_999.png",
                     "frames/epoch_1000_step_00002.png", "samples/epoch_1000.png"]


def test_a_long_runs_gif_keeps_evenly_spaced_pictures_from_first_to_last(tmp_path):
    from gan_tf.train import gif_frames

    (tmp_path / "samples").mkdir()
    (tmp_path / "frames").mkdir()
    for epoch in range(1, 301):  # 300 epochs, 3 frames inside each: 1,200 pictures
        (tmp_path / f"samples/epoch_{epoch:03d}.png").write_bytes(b"")
        for step in (8, 16, 24):
            (tmp_path / f"frames/epoch_{epoch:03d}_step_{step:05d}.png").write_bytes(b"")
    every = gif_frames(tmp_path, last_epoch=300, limit=10_000)
    kept = gif_frames(tmp_path, last_epoch=300, limit=100)
    assert len(every) == 1200 and len(kept) == 100 and len(set(kept)) == 100
    assert kept[0] == every[0] and kept[-1] == every[-1] == tmp_path / "samples/epoch_300.png"
    positions = [every.index(path) for path in kept]
    gaps = {b - a for a, b in zip(positions, positions[1:])}
    assert gaps <= {12, 13}, gaps  # 1,199 / 99 = 12.1: evenly spaced, in drawing order
    assert gif_frames(tmp_path, last_epoch=2, limit=100) == every[:8]  # short runs keep every picture
