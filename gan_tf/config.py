"""The settings of a training run and their checks.

Kept free of TensorFlow so that the CLI can refuse an impossible setting, or print its
help, in a fraction of a second instead of after TensorFlow's start-up.
"""

import dataclasses
import math

from . import data

MODELS = ("dcgan",)
GENERATOR_LOSS_NAMES = ("non_saturating", "saturating")  # keys of losses.GENERATOR_LOSSES
LATENT_DIM = 100


class ConfigError(ValueError):
    """An impossible setting; the message says which and what is allowed."""


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a run; the CLI's options map one-to-one onto these fields."""

    model: str = "dcgan"
    dataset: str = "mnist"
    epochs: int = 50
    batch_size: int = 256
    limit: int | None = None  # use only the first N training images (quick runs)
    seed: int = 0
    latent_dim: int = LATENT_DIM
    learning_rate: float = 1e-4
    beta_1: float = 0.9
    generator_loss: str = "non_saturating"
    grid_size: int = 64  # images in each epoch's sample grid
    data_dir: str | None = None

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
        if self.generator_loss not in GENERATOR_LOSS_NAMES:
            raise ConfigError(f"unknown generator loss {self.generator_loss!r}; "
                              f"choose one of: {', '.join(GENERATOR_LOSS_NAMES)}")
        for name in ("epochs", "batch_size", "latent_dim", "grid_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be a positive number, got {self.learning_rate}")
        if not 0 <= self.beta_1 < 1:
            raise ConfigError(f"beta_1 must be in [0, 1), got {self.beta_1}")
        available = data.SPLIT_SIZES["train"] if n_images is None else n_images
        if self.limit:
            available = min(available, self.limit)
        if self.batch_size > available:
            raise ConfigError(f"batch_size {self.batch_size} is larger than the {available} "
                              "training images; lower --batch-size or raise --limit")
        return self
