"""The settings of a training run and their checks.

Kept free of TensorFlow so that the CLI can refuse an impossible setting, or print its
help, in a fraction of a second instead of after TensorFlow's start-up.
"""

import dataclasses
import math

from . import data

GENERATOR_LOSS_NAMES = ("non_saturating", "saturating")  # keys of losses.GENERATOR_LOSSES
LATENT_DIM = 100
# Each model's recipe, used for every setting left at None:
# dcgan   TensorFlow's tutorial architecture trained with the DCGAN paper's Adam(2e-4, beta_1=0.5)
#         on batches of 16 (16 times the updates per epoch of the tutorial's 256), sampled from
#         a moving average of the generator's weights. On a 2-core CPU an image costs only 20-45 %
#         more at batch 16 than at 64, so a smaller batch buys many more updates: cFID 28.0 after 4
#         epochs against 40.7 at 64 (benchmarks/dcgan_levers.py; batch 8 was no better per second).
#         On a GPU, where small batches leave the device idle, try --batch-size 64 or more.
#         benchmarks/time_to_quality.py measures it against the tutorial's recipe. D keeps the
#         tutorial's dropout 0.3: without it the first epochs were better (MNIST cFID 28.9 / 28.0
#         against 32.9 / 32.9 after 3 epochs on two seeds; Fashion-MNIST 13.1 against 16.9), but from
#         epoch 6 on it stalled and then worsened (24.8 after 10 epochs against 18.1 with dropout,
#         benchmarks/README): a default must keep improving over the 50 epochs it trains.
# cgan    the same recipe, conditional (notebook 04), plus the mode-seeking term (weight 0.2): without
#         it the generator draws each class as one template (benchmarks/cgan_quality.py). Logs its
#         label accuracy and within-class variety every epoch. On MNIST only, D learns at twice G's
#         rate (4e-4, TTUR; DATASET_DEFAULTS): within-class ratio 3.0 against 3.4 on two seeds, cFID
#         2.2 against 2.5 after 4 epochs. On Fashion-MNIST the same change was worse (15.2 against 13.3).
#         D has no dropout: with it, Fashion-MNIST's within-class ratio was 12.0-13.3 (cFID 4.1-4.8),
#         without it 10.4-10.9 (3.6); on MNIST with D at 4e-4, 2.67 against 3.03 on seed 1, level on seed 0.
# wgan    Arjovsky et al. 2017: RMSprop 5e-5, batch 64, clip 0.01, 5 critic steps.
# wgan_gp Gulrajani et al. 2017: Adam(1e-4, beta_1=0, beta_2=0.9), batch 64, lambda 10, 5 critic steps.
# cyclegan Zhu et al. 2017 scaled to 28x28 (notebook 06): Adam(2e-4, beta_1=0.5), least-squares
#         losses, cycle weight 10, identity weight 5 (half of it), a pool of 50 past fakes; batches
#         of 16 (the paper's 1 would leave a CPU idle). Scores its translations every epoch.
# Mixed precision, bfloat16 and XLA are left to the machine (None) for every model: gan_tf.hardware
# turns them on where they were measured or documented to pay off.
# Every model: D without spectral normalisation or R1 penalty; dropout 0.3 in the dcgan's D, none in
# the cgan's D or a WGAN critic; no InfoGAN code.
_D = dict(spectral_norm=False, r1_weight=0.0, d_dropout=0.3, categories=0)
_GAN = dict(_D, batch_size=64, learning_rate=2e-4, beta_1=0.5, beta_2=0.999, ema_decay=0.999)
_CRITIC = dict(_D, d_dropout=0.0, ema_decay=0.0, eval_every=0, mode_seeking=0.0)
MODEL_DEFAULTS = {
    "dcgan": dict(_GAN, batch_size=16, eval_every=0, mode_seeking=0.0),
    "cgan": dict(_GAN, d_dropout=0.0, eval_every=1, mode_seeking=0.2, label_channel=True),
    "wgan": dict(_CRITIC, batch_size=64, learning_rate=5e-5, beta_1=0.9, beta_2=0.999),
    "wgan_gp": dict(_CRITIC, batch_size=64, learning_rate=1e-4, beta_1=0.0, beta_2=0.9),
    "cyclegan": dict(_D, d_dropout=0.0, batch_size=16, learning_rate=2e-4, beta_1=0.5, beta_2=0.999,
                     ema_decay=0.0, eval_every=1, mode_seeking=0.0),
}
# Where a model's recipe differs by dataset: (model, dataset) -> settings over MODEL_DEFAULTS.
DATASET_DEFAULTS = {("cgan", "mnist"): dict(d_learning_rate=4e-4)}
# Settings a resumed run may change: the total to reach, what is measured and logged, where
# the data lives. Any other change would make the run's record describe two runs.
# The strategy may change too: a run started on one device can go on over several, or back.
RESUMABLE = ("epochs", "eval_every", "log_every", "frames_per_epoch", "data_dir", "strategy")
# What a run saved by an older gan_tf, whose config.json lacks a setting, trained with (a
# function of the saved settings where that depended on the model).
SAVED_BEFORE = {"mode_seeking": 0.0, "label_channel": True, "image_size": None, "augment": "",
                "upsampling": lambda saved: "resize" if saved.get("image_size") else None,
                "width": lambda saved: COLOUR_WIDTH if saved.get("image_size") else None,
                "d_learning_rate": None, "spectral_norm": False, "r1_weight": 0.0, "categories": 0,
                "bfloat16": False, "lr_decay": False,
                "d_dropout": lambda saved: 0.0 if saved.get("model") in WASSERSTEIN + TRANSLATION else 0.3}
# TensorFlow's DCGAN tutorial, for comparisons: TrainConfig(model="dcgan", **TUTORIAL_RECIPE).
TUTORIAL_RECIPE = dict(batch_size=256, learning_rate=1e-4, beta_1=0.9, beta_2=0.999, ema_decay=0.0)
MODELS = tuple(MODEL_DEFAULTS)
WASSERSTEIN = ("wgan", "wgan_gp")
CONDITIONAL = ("cgan",)
TRANSLATION = ("cyclegan",)  # image-to-image: two generators, no noise
FOLDER_MODELS = ("dcgan", "wgan", "wgan_gp")  # the models an image folder (no labels, one domain) can train
# DiffAugment (Zhao et al. 2020, gan_tf.augment): the transforms --augment may name.
AUGMENTATIONS = ("color", "translation", "cutout")
# How the colour generator doubles its size (models.make_generator): repeat pixels then convolve, or
# the DCGAN paper's stride-2 transposed convolutions (kept to show the checkerboard they can stamp).
UPSAMPLINGS = ("resize", "transposed")
# Base width w of the colour networks (models.make_generator), --width. The paper's 128 gives a
# 12.7M-parameter generator; 32 keeps a 64x64 step fast enough for a 2-core CPU (notebook 07 measures
# it). Raise it on a GPU.
COLOUR_WIDTH = 32
# The same w for the 28x28 networks: G's widths are (4w, 2w, w), D's (w, 2w); TensorFlow's tutorial
# has w = 64. --width 32 made the step 2.4x faster on 2 CPU cores, and each step teaches less
# (benchmarks/README, "Narrower networks").
TUTORIAL_WIDTH = 64
DENSITY_K = 5  # neighbours for density and coverage (gan_tf.metrics), as Naeem et al. recommend
# tf.distribute strategies --strategy may name (gan_tf.distribute); "default" is one device.
STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")
CPU_DEVICES_ENV = "GAN_TF_CPU_DEVICES"  # without a GPU, mirror over the CPU split into this many devices
# The models whose step runs replicated: wgan clips weights and a cyclegan keeps pools of past
# fakes, both updates that each replica would make to its own copy.
DISTRIBUTED_MODELS = ("dcgan", "cgan", "wgan_gp")


class ConfigError(ValueError):
    """An impossible setting; the message says which and what is allowed."""


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run; the CLI's options map one-to-one onto these fields."""

    model: str = "dcgan"
    dataset: str = "mnist"  # mnist, fashion_mnist, or the path of a folder of images
    image_size: int | None = None  # image folders: 32 or 64 pixels square (None: 64)
    upsampling: str | None = None  # image folders: how G doubles its size (UPSAMPLINGS; None: resize)
    width: int | None = None  # base width w of G and D (None: COLOUR_WIDTH for a folder, else TUTORIAL_WIDTH)
    augment: str = ""  # DiffAugment before D, e.g. "color,translation,cutout" ("": none)
    epochs: int = 50
    batch_size: int | None = None  # None: the model's default (MODEL_DEFAULTS)
    limit: int | None = None  # use only the first N training images (quick runs)
    seed: int = 0
    latent_dim: int = LATENT_DIM
    learning_rate: float | None = None
    d_learning_rate: float | None = None  # D's own rate (TTUR, Heusel et al. 2017; None: learning_rate)
    lr_decay: bool = False  # every rate falls linearly to 0 over the run's second half (train.decayed_rate)
    beta_1: float | None = None
    beta_2: float | None = None
    generator_loss: str = "non_saturating"  # dcgan, cgan
    mode_seeking: float | None = None  # dcgan, cgan: weight of the mode-seeking term (0: off)
    label_channel: bool | None = None  # cgan: D also sees the label as a learned image channel
    ema_decay: float | None = None  # sample from a moving average of G's weights (0: off)
    spectral_norm: bool | None = None  # dcgan, cgan, wgan_gp: spectrally normalised D (Miyato et al. 2018)
    d_dropout: float | None = None  # D's dropout rate (0: none)
    r1_weight: float | None = None  # dcgan, cgan: gamma of the R1 penalty (Mescheder et al. 2018; 0: off)
    categories: int | None = None  # dcgan: an InfoGAN code of this many values read off z (0: none)
    n_critic: int = 5  # wgan, wgan_gp: critic updates per generator update
    gp_weight: float = 10.0  # wgan_gp: the gradient penalty's lambda
    clip_value: float = 0.01  # wgan: critic weights are clipped to [-c, c]
    mixed_precision: bool | None = None  # float16 with loss scaling (None: on GPUs with Tensor Cores)
    bfloat16: bool | None = None  # bfloat16 compute, no loss scaling (None: on CPUs where it pays)
    jit_compile: bool | None = None  # compile the step with XLA (None: where it pays off)
    strategy: str = "default"  # tf.distribute: default (one device), mirrored, multi-worker, tpu
    grid_size: int = 64  # images in each epoch's sample grid
    frames_per_epoch: int = 4  # grids per epoch in progress.gif (1: the epoch grids only)
    log_every: int = 10  # steps between rows of steps.csv (0: none)
    eval_every: int | None = None  # epochs between quality measurements (gan_tf.metrics; 0: none)
    data_dir: str | None = None
    transform: str = "thicken"  # cyclegan: the style of domain B (data.STYLE_TRANSFORMS)
    cycle_weight: float = 10.0  # cyclegan: lambda of the cycle-consistency loss
    identity_weight: float = 5.0  # cyclegan: weight of the identity loss (the paper's 0.5 lambda)
    pool_size: int = 50  # cyclegan: past fakes kept per direction for the discriminators (0: none)

    def __post_init__(self):
        # Remember which settings were left to the model's recipe: resuming a run saved under an
        # older recipe keeps that run's value instead of refusing the change (config.resumed).
        by_dataset = DATASET_DEFAULTS.get((self.model, data.spelled_name(self.dataset)), {})
        recipe = {**MODEL_DEFAULTS.get(self.model, {}), **by_dataset}
        self._recipe_filled = tuple(key for key in recipe if getattr(self, key) is None)
        for key in self._recipe_filled:
            setattr(self, key, recipe[key])

    @property
    def images_per_step(self):
        """A WGAN step feeds n_critic batches to the critic, one per update."""
        return self.batch_size * (self.n_critic if self.model in WASSERSTEIN else 1)

    def validate(self, n_images=None):
        """Refuse impossible settings before any work starts; returns self.

        ``n_images``: how many training images there are (default: the full split).
        """
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        try:
            self.dataset = data.canonical_name(self.dataset)
        except data.DataError as e:
            raise ConfigError(str(e)) from None
        self._validate_images()
        if self.generator_loss not in GENERATOR_LOSS_NAMES:
            raise ConfigError(f"unknown generator loss {self.generator_loss!r}; "
                              f"choose one of: {', '.join(GENERATOR_LOSS_NAMES)}")
        for name in ("epochs", "batch_size", "latent_dim", "grid_size", "n_critic", "frames_per_epoch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("log_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")
        for name in ("learning_rate", "d_learning_rate"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive number, got {value}")
        for name in ("beta_1", "beta_2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 turns the average off), got {self.ema_decay}")
        if not (self.mode_seeking >= 0 and math.isfinite(self.mode_seeking)):
            raise ConfigError(f"mode_seeking must be a number >= 0 (0 turns it off), got {self.mode_seeking}")
        if self.mode_seeking and self.model not in ("dcgan", "cgan"):
            raise ConfigError(f"mode_seeking is for dcgan and cgan; {self.model} trains with its own step")
        if self.spectral_norm and self.model not in ("dcgan", "cgan", "wgan_gp"):
            raise ConfigError(f"spectral_norm is for dcgan, cgan and wgan_gp; {self.model} "
                              + ("keeps its critic Lipschitz by clipping" if self.model == "wgan"
                                 else "has patch discriminators of its own"))
        if self.d_dropout is not None and not 0 <= self.d_dropout < 1:
            raise ConfigError(f"d_dropout must be in [0, 1) (0: none), got {self.d_dropout}")
        if self.d_dropout and self.model not in ("dcgan", "cgan"):
            why = ("a critic's score should be a fixed function of the image" if self.model in WASSERSTEIN
                   else "its patch discriminators have none")
            raise ConfigError(f"d_dropout is for dcgan and cgan ({self.model}: {why}); drop --d-dropout")
        if not (self.r1_weight >= 0 and math.isfinite(self.r1_weight)):
            raise ConfigError(f"r1_weight must be a number >= 0 (0 turns it off), got {self.r1_weight}")
        if self.r1_weight and self.model not in ("dcgan", "cgan"):
            raise ConfigError(f"r1_weight is for dcgan and cgan; {self.model} trains with its own step")
        if self.categories and self.model != "dcgan":
            why = "has class labels" if self.model in CONDITIONAL else "trains with its own step"
            raise ConfigError(f"categories (an InfoGAN code) is for dcgan; {self.model} {why}")
        if self.categories and not 2 <= self.categories <= self.latent_dim:
            raise ConfigError(f"categories must be 0 (off) or between 2 and latent_dim ({self.latent_dim}): "
                              f"the code is read off z's first entries; got {self.categories}")
        if self.gp_weight < 0 or self.clip_value < 0:
            raise ConfigError("gp_weight and clip_value must not be negative")
        if self.transform not in data.STYLE_TRANSFORMS:
            raise ConfigError(f"unknown transform {self.transform!r}; choose one of: "
                              f"{', '.join(data.STYLE_TRANSFORMS)}")
        for name in ("cycle_weight", "identity_weight"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ConfigError(f"{name} must be a number >= 0 (0 turns it off), got {getattr(self, name)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        if self.strategy != "default" and self.model not in DISTRIBUTED_MODELS:
            why = ("clips the critic's weights after each update" if self.model == "wgan"
                   else "keeps pools of past fakes")
            raise ConfigError(f"{self.model} {why}, which each replica would do to its own copy; "
                              f"--strategy {self.strategy} is for {', '.join(DISTRIBUTED_MODELS)}")
        if self.mixed_precision and self.bfloat16:
            raise ConfigError("--mixed-precision (float16) and --bfloat16 are two kinds of mixed precision; "
                              "choose one (float16 on GPUs with Tensor Cores, bfloat16 on CPUs with AVX-512 "
                              "BF16 or AMX)")
        if self.jit_compile and self.strategy in ("mirrored", "multi-worker"):
            raise ConfigError(f"--xla is not supported with --strategy {self.strategy}: an XLA program runs "
                              "on one device, and Keras too turns XLA off under tf.distribute; drop --xla")
        if self.pool_size < 0:
            raise ConfigError(f"pool_size must not be negative (0: no pool), got {self.pool_size}")
        if self.model in TRANSLATION and 0 < self.pool_size < self.batch_size:
            raise ConfigError(f"pool_size {self.pool_size} is smaller than a batch ({self.batch_size}); "
                              "raise --pool-size, lower --batch-size, or turn the pool off with 0")
        available = n_images
        if available is None:  # a folder's size is known once it is listed: assume it is large enough
            available = math.inf if data.is_image_folder(self.dataset) else data.SPLIT_SIZES["train"]
        if self.limit:
            available = min(available, self.limit)
        if self.model in TRANSLATION:
            available //= 2  # the training images are split into the two domains
        if self.images_per_step > available:
            per_step = (f" (x {self.n_critic} critic steps = {self.images_per_step} per step)"
                        if self.images_per_step != self.batch_size else "")
            raise ConfigError(f"batch_size {self.batch_size}{per_step} is larger than the "
                              f"{available} training images; lower --batch-size or raise --limit")
        return self

    def _validate_images(self):
        """The settings of image folders and DiffAugment (after the dataset's name is canonical)."""
        if data.is_image_folder(self.dataset):
            if self.model not in FOLDER_MODELS:
                why = "class labels" if self.model in CONDITIONAL else "two datasets to translate between"
                raise ConfigError(f"{self.model} needs {why}; an image folder has neither. Train one of "
                                  f"{', '.join(FOLDER_MODELS)} on it.")
            if self.image_size is None:
                self.image_size = data.DEFAULT_IMAGE_SIZE
            if self.image_size not in data.IMAGE_SIZES:
                raise ConfigError(f"image_size must be one of {', '.join(map(str, data.IMAGE_SIZES))}, "
                                  f"got {self.image_size}")
            if self.upsampling is None:
                self.upsampling = UPSAMPLINGS[0]
            if self.upsampling not in UPSAMPLINGS:
                raise ConfigError(f"unknown upsampling {self.upsampling!r}; "
                                  f"choose one of: {', '.join(UPSAMPLINGS)}")
            if self.width is None:
                self.width = COLOUR_WIDTH
        elif self.image_size not in (None, data.IMAGE_SHAPE[0]):
            raise ConfigError(f"{self.dataset} images are {data.IMAGE_SHAPE[0]}x{data.IMAGE_SHAPE[1]}; "
                              "--image-size is for image folders (--dataset PATH)")
        elif self.upsampling is not None:
            raise ConfigError(f"--upsampling is for image folders (--dataset PATH); {self.dataset}'s "
                              "generator is the TensorFlow tutorial's, with its transposed convolutions")
        if self.width is not None:
            if self.model in TRANSLATION:
                raise ConfigError(f"--width is for the GANs that draw from noise; {self.model}'s translators "
                                  "and patch discriminators have widths of their own")
            if not (isinstance(self.width, int) and self.width >= 1):
                default = COLOUR_WIDTH if data.is_image_folder(self.dataset) else TUTORIAL_WIDTH
                raise ConfigError(f"width must be a whole number of at least 1, got {self.width!r} "
                                  f"(default: {default})")
        names = [name.strip() for name in self.augment.split(",") if name.strip()]
        unknown = [name for name in names if name not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(f"unknown augmentation {', '.join(map(repr, unknown))}; --augment takes a "
                              f"comma-separated list of: {', '.join(AUGMENTATIONS)}")
        if names and self.model in TRANSLATION:
            raise ConfigError("--augment is for dcgan, cgan, wgan and wgan_gp")
        self.augment = ",".join(names)

    @property
    def discriminator_learning_rate(self):
        """D's learning rate: its own when set (two time-scales), else the one both networks share."""
        return self.d_learning_rate or self.learning_rate

    @property
    def image_shape(self):
        """The shape of one training image: (28, 28, 1), or (S, S, 3) for an image folder."""
        return data.image_shape(self.dataset, self.image_size)


def with_older_defaults(saved):
    """A run's saved settings (a dict) with what a run saved by an older gan_tf, which did not
    record a setting yet, trained with (SAVED_BEFORE)."""
    before = {key: value(saved) if callable(value) else value for key, value in SAVED_BEFORE.items()}
    return {**before, **saved}


def resumed(config, saved, run_dir):
    """The settings a run in ``run_dir`` continues with: ``config``, with the settings it leaves
    to the machine (None) or to the model's recipe taken from ``saved`` (the run's config.json as
    a dict, or None for a new run), so a run started under an older recipe resumes with it. Any
    other difference from the saved settings is refused, listing each one."""
    if saved is None:
        return config
    merged, clash = dataclasses.asdict(config), []
    left_to_recipe = getattr(config, "_recipe_filled", ())
    for key, old in with_older_defaults(saved).items():
        if key not in merged or key in RESUMABLE:
            continue  # a setting of another gan_tf version, or one a resume may change
        if merged[key] is None or key in left_to_recipe:
            merged[key] = old
        elif merged[key] != old:
            clash.append(f"{key}: saved {old!r}, now {merged[key]!r}")
    if merged["lr_decay"] and config.epochs != saved.get("epochs"):
        # The rate reaches 0 at the last step of the epochs the run was started with: another
        # total would bend its schedule in the middle, and a longer run would train at rate ~0.
        clash.append(f"epochs: saved {saved.get('epochs')!r}, now {config.epochs!r} (with lr_decay the "
                     "learning rate falls to 0 at the saved last epoch; a run that decays cannot change "
                     "its length)")
    if clash:
        raise ConfigError(f"{run_dir} holds a run with other settings ({'; '.join(clash)}). "
                          f"Resume it with the saved settings (only {', '.join(RESUMABLE[:-1])} and "
                          f"{RESUMABLE[-1]} may change), or train into a new --out directory.")
    return from_saved(merged)


def from_saved(settings):
    """A TrainConfig with exactly these settings (a dict, e.g. a run's config.json). A saved None
    stays None where today's recipe would fill in a value: a cgan MNIST run saved with
    d_learning_rate None trained D at G's rate, not at the recipe's 4e-4."""
    config = TrainConfig(**settings)
    for key in config._recipe_filled:
        if key in settings:
            setattr(config, key, settings[key])
    config._recipe_filled = ()
    return config
