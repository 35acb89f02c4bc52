"""The command line: ``python -m gan_tf train|sample|evaluate|translate ...``.

Settings are checked before TensorFlow is even imported, so a typo costs a second,
not a start-up; every failure ends in one ``error:`` line and a non-zero exit.
"""

import argparse
import sys
from pathlib import Path

from . import data
from .config import (
    AUGMENTATIONS,
    COLOUR_WIDTH,
    CPU_DEVICES_ENV,
    DENSITY_K,
    GENERATOR_LOSS_NAMES,
    MODEL_DEFAULTS,
    MODELS,
    STRATEGIES,
    TRANSLATION,
    TUTORIAL_WIDTH,
    UPSAMPLINGS,
    ConfigError,
    TrainConfig,
)

DEFAULTS = TrainConfig()


def _per_model(key):
    return ", ".join(f"{model} {values[key]}" for model, values in MODEL_DEFAULTS.items())


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but only where the help text does not already say them."""

    def _get_help_string(self, action):
        if "default:" in (action.help or "") or action.default is None or action.required:
            return action.help
        return super()._get_help_string(action)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m gan_tf",
        description="Train GANs on MNIST / Fashion-MNIST, sample from them, score them, and "
                    "translate images with a CycleGAN.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_train(commands)
    _add_sample(commands)
    _add_evaluate(commands)
    _add_translate(commands)
    return parser


def _add_train(commands):
    train = commands.add_parser(
        "train", help="train a GAN into a run directory (resumes if it has a checkpoint)",
        description="Train a GAN into the run directory --out. Writes samples/epoch_NNN.png, "
                    "history.csv, checkpoints/, tensorboard/, and at the end progress.gif and "
                    "generator.keras. Running it again on the same --out resumes from the last "
                    "saved epoch with the saved settings (only --epochs, --eval-every, --frames-per-epoch, "
                    "--data-dir and --strategy may change; a changed setting is refused); --epochs is "
                    "the total to reach.",
        formatter_class=_HelpFormatter)
    train.add_argument("model", choices=MODELS,
                       help="which GAN to train (cgan: conditional, can be asked for a class; "
                            "cyclegan: translates between MNIST and a restyled copy, see --transform)")
    train.add_argument("--dataset", default=DEFAULTS.dataset, metavar="NAME|FOLDER",
                       help="training data: mnist or fashion_mnist (from --data-dir, $GAN_TF_DATA_DIR or "
                            "data/), or the path of a folder of your own PNG/JPEG/WebP images, searched "
                            "recursively and read in colour (dcgan, wgan, wgan_gp)")
    train.add_argument("--image-size", type=int, default=None, choices=data.IMAGE_SIZES,
                       help="image folders: train on images this many pixels square (default: "
                            f"{data.DEFAULT_IMAGE_SIZE}); each picture's centre square is resized to it")
    train.add_argument("--upsampling", default=None, choices=UPSAMPLINGS,
                       help="image folders: how the generator doubles its image size: resize (repeat "
                            "pixels, then a 3x3 convolution; default) or transposed (the DCGAN paper's "
                            "stride-2 transposed convolutions, which can stamp a checkerboard)")
    train.add_argument("--width", type=int, default=None, metavar="W",
                       help=f"base width of both networks, the channels of G's last and D's first "
                            "convolution, doubling at each smaller size. Image folders: default "
                            f"{COLOUR_WIDTH}, fast enough for a CPU (the DCGAN paper's is 128); doubling it "
                            "made a 64x64 step 3x slower on 2 CPU cores (notebook 07): raise it on a GPU. "
                            f"MNIST and Fashion-MNIST: default {TUTORIAL_WIDTH}, the TensorFlow tutorial's; "
                            "32 halves every layer: a 2.4x faster step on 2 CPU cores that learns less")
    train.add_argument("--augment", nargs="?", const=",".join(AUGMENTATIONS), default=DEFAULTS.augment,
                       metavar="POLICY",
                       help="DiffAugment: randomly recolour, shift and cut out every image the "
                            "discriminator sees, real or fake (against overfitting on a few thousand "
                            f"images); alone it means {','.join(AUGMENTATIONS)}, or name a comma-separated "
                            "subset (default: off)")
    train.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                       help="total number of epochs (passes over the training images)")
    train.add_argument("--out", required=True, type=Path, help="run directory to write into")
    train.add_argument("--batch-size", type=int, default=None,
                       help=f"images per batch (default: {_per_model('batch_size')}); "
                            "a WGAN step uses --n-critic batches")
    train.add_argument("--limit", type=int, default=None,
                       help="use only the first N training images (quick runs; default: all)")
    train.add_argument("--seed", type=int, default=DEFAULTS.seed,
                       help="seed for weights, noise and shuffling (same seed, same run)")
    train.add_argument("--data-dir", default=None,
                       help=f"folder holding mnist/ and fashion-mnist/; the only one searched when given "
                            f"(default: ${data.DATA_ENV}, then the repo's data/)")
    train.add_argument("--lr", type=float, default=None,
                       help=f"learning rate of both networks (default: {_per_model('learning_rate')})")
    train.add_argument("--d-lr", type=float, default=None, metavar="LR",
                       help="the discriminator's (critic's) own learning rate, two time-scales "
                            "(default: --lr; cgan on MNIST: 4e-4)")
    train.add_argument("--lr-decay", action=argparse.BooleanOptionalAction, default=DEFAULTS.lr_decay,
                       help="keep every learning rate for the first half of --epochs, then let it fall "
                            "linearly to 0 at the last step, as CycleGAN does (a resumed run must then "
                            "keep its --epochs; default: off)")
    train.add_argument("--beta1", type=float, default=None,
                       help=f"Adam beta_1 of both networks (default: {_per_model('beta_1')})")
    train.add_argument("--loss", default=DEFAULTS.generator_loss, choices=GENERATOR_LOSS_NAMES,
                       help="generator loss: -log D(G(z)) (non_saturating) or "
                            "log(1 - D(G(z))) (saturating, the original minimax)")
    train.add_argument("--mode-seeking", type=float, default=None, metavar="WEIGHT",
                       help="dcgan, cgan: weight of the mode-seeking term, which makes images of one "
                            "class differ as their noise does; 0: off "
                            f"(default: {_per_model('mode_seeking')})")
    train.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction, default=None,
                       help="dcgan, cgan, wgan_gp: spectral normalisation of the discriminator's layers "
                            "(default: off)")
    train.add_argument("--d-dropout", type=float, default=None, metavar="RATE",
                       help="dcgan, cgan: dropout rate of the discriminator; 0: none "
                            f"(default: {_per_model('d_dropout')})")
    train.add_argument("--r1", type=float, default=None, metavar="GAMMA",
                       help="dcgan, cgan: weight of the R1 penalty on the discriminator's gradient at "
                            "real images; 0: off (default: 0)")
    train.add_argument("--categories", type=int, default=None, metavar="K",
                       help="dcgan: InfoGAN's categorical code: G reads a code of K values off its noise "
                            "and D learns to tell it from the image; 0: off (default: 0)")
    train.add_argument("--label-channel", action=argparse.BooleanOptionalAction, default=None,
                       help="cgan: the discriminator also sees the label as a learned image channel, "
                            "besides the projection (default: on)")
    train.add_argument("--latent-dim", type=int, default=DEFAULTS.latent_dim,
                       help="length of the generator's noise vector z")
    train.add_argument("--n-critic", type=int, default=DEFAULTS.n_critic,
                       help="wgan, wgan_gp: critic updates per generator update")
    train.add_argument("--gp-weight", type=float, default=DEFAULTS.gp_weight,
                       help="wgan_gp: weight lambda of the gradient penalty")
    train.add_argument("--clip", type=float, default=DEFAULTS.clip_value,
                       help="wgan: critic weights are clipped to [-clip, clip]")
    train.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                       help="compute in float16 with loss scaling (default: on GPUs with Tensor Cores, "
                            "off elsewhere: it slows a CPU down; gan_tf.hardware.speedups)")
    train.add_argument("--bfloat16", action=argparse.BooleanOptionalAction, default=None,
                       help="compute in bfloat16, no loss scaling (default: on CPUs with AVX-512 BF16 or "
                            "AMX, where oneDNN runs it faster; gan_tf.hardware.bfloat16_pays)")
    train.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                       help="compile the training step with XLA (default: where it pays off - a GPU, "
                            "or a CPU without oneDNN; gan_tf.hardware.speedups)")
    train.add_argument("--strategy", default=DEFAULTS.strategy, choices=STRATEGIES,
                       help="tf.distribute: default (one device), mirrored (every GPU of this machine; "
                            f"without one, the CPU split into ${CPU_DEVICES_ENV} logical devices), "
                            "multi-worker (several machines, each told the cluster by TF_CONFIG), tpu. "
                            "--batch-size stays the global batch. For dcgan, cgan, wgan_gp; "
                            "may change on a resume")
    train.add_argument("--ema", type=float, default=None, metavar="DECAY",
                       help=f"sample from a moving average of the generator's weights with this "
                            f"decay; 0: off (default: {_per_model('ema_decay')}). It warms up: step s "
                            "uses min(DECAY, (1+s)/(10+s)), and (1+s)/(10+s) passes 0.99 at step 890 and "
                            "0.999 at step 8,990, so a DECAY above what the run's last step reaches has "
                            "no effect")
    train.add_argument("--eval-every", type=int, default=None, metavar="K",
                       help="every K epochs, score 2,000 samples (cFID, Inception Score, coverage, "
                            "precision, recall; cgan: label accuracy; an image folder: KID, FD, coverage, "
                            "... in the features of an encoder trained on it) into history.csv and "
                            f"TensorBoard; 0: never (default: {_per_model('eval_every')})")
    train.add_argument("--frames-per-epoch", type=int, default=DEFAULTS.frames_per_epoch, metavar="N",
                       help="sample grids per epoch in progress.gif (1: the epoch grids only; a long run's "
                            "GIF keeps 100 of all, evenly spaced); may change on a resume")
    train.add_argument("--transform", default=DEFAULTS.transform, choices=sorted(data.STYLE_TRANSFORMS),
                       help="cyclegan: the style of domain B, applied to half the training images "
                            "(thicken: 3x3 dilation, thin: 2x2 erosion, invert: 255 - pixel)")
    train.add_argument("--cycle-weight", type=float, default=DEFAULTS.cycle_weight, metavar="LAMBDA",
                       help="cyclegan: weight of the cycle-consistency loss; 0: off")
    train.add_argument("--identity-weight", type=float, default=DEFAULTS.identity_weight, metavar="W",
                       help="cyclegan: weight of the identity loss; 0: off")
    train.add_argument("--pool-size", type=int, default=DEFAULTS.pool_size, metavar="N",
                       help="cyclegan: past fakes per direction shown to the discriminators; 0: none")
    train.add_argument("--quiet", action="store_true",
                       help="no progress bar; one line per epoch only (the default when the output "
                            "goes to a file or pipe)")



def _add_sample(commands):
    sample = commands.add_parser(
        "sample", help="write images generated by a trained run",
        description="Generate images with a run's generator (its newest checkpoint, else "
                    "generator.keras). FILE ending in .npy: float32 array N x 28 x 28 x 1 (a colour "
                    "run: N x S x S x 3) with values in [-1, 1]; ending in .png: a grid picture.",
        formatter_class=_HelpFormatter)
    sample.add_argument("run_dir", type=Path, metavar="DIR", help="a run directory from 'train'")
    sample.add_argument("--n", type=int, default=64, help="number of images")
    sample.add_argument("--out", required=True, type=Path, metavar="FILE",
                        help="output file, .npy or .png")
    sample.add_argument("--seed", type=int, default=0, help="seed of the noise vectors")
    sample.add_argument("--label", type=int, default=None, metavar="K",
                        help="cgan runs only: generate class K (default: every class in turn)")



def _add_evaluate(commands):
    evaluate = commands.add_parser(
        "evaluate", help="score generated images with the offline metrics (prints JSON)",
        description="Score images against the real test split with a classifier trained on the "
                    "dataset's own training split (shipped with gan_tf): cFID, classifier Inception Score, "
                    "class coverage, precision and recall, density and coverage, intra-class cFID. "
                    "SAMPLES is a .npy of N x 28 x 28 x 1 "
                    "images in [-1, 1] as 'sample' writes them; uint8 and [0, 1] floats are "
                    "accepted too, and the output says which range it assumed.",
        formatter_class=_HelpFormatter)
    evaluate.add_argument("samples", nargs="?", type=Path, metavar="SAMPLES.npy",
                          help="the images to score (not needed with --real)")
    evaluate.add_argument("--dataset", default="mnist", metavar="NAME|FOLDER",
                          help="the dataset the images should look like: mnist, fashion_mnist, or a folder "
                               "of images (then KID, FD, precision, recall, density and coverage in the "
                               "features of an encoder trained on the folder, gan_tf.folder_metrics)")
    evaluate.add_argument("--real", action="store_true",
                          help="score the first --n real training images instead: the floor (a folder: "
                               "its held-out half)")
    evaluate.add_argument("--n", type=int, default=10_000, help="images scored with --real")
    evaluate.add_argument("--k", type=int, default=3, help="neighbours for precision and recall")
    evaluate.add_argument("--labels", type=Path, default=None, metavar="LABELS.npy",
                          help="the class each image was generated for ('sample' writes SAMPLES.labels.npy "
                               "for cgan runs); intra-class cFID then groups by these instead of the "
                               "classifier's labels (--real always uses the true labels)")
    evaluate.add_argument("--data-dir", default=None, help="folder holding mnist/ and fashion-mnist/")


def _add_translate(commands):
    translate = commands.add_parser(
        "translate", help="translate images with a trained cyclegan run",
        description="Translate images with a cyclegan run's generator (its newest checkpoint, else "
                    "generator_ab.keras / generator_ba.keras). INPUT is a .npy of N x 28 x 28 (x 1) "
                    "images: uint8, floats in [0, 1] or in [-1, 1]. FILE ending in .npy: float32 "
                    "N x 28 x 28 x 1 in [-1, 1]; ending in .png: a grid, inputs above their translations.",
        formatter_class=_HelpFormatter)
    translate.add_argument("run_dir", type=Path, metavar="DIR", help="a run directory from 'train cyclegan'")
    translate.add_argument("--direction", choices=("ab", "ba"), default="ab",
                           help="ab: domain A (the dataset as it is) to B (restyled); ba: back")
    translate.add_argument("--input", required=True, type=Path, metavar="INPUT.npy", help="the images")
    translate.add_argument("--out", required=True, type=Path, metavar="FILE",
                           help="output file, .npy or .png")


def _translate(args):
    if args.out.suffix not in (".npy", ".png"):
        raise ConfigError(f"--out must end in .npy or .png, got {args.out.name!r}")
    if not args.run_dir.is_dir():
        raise ConfigError(f"{args.run_dir} is not a directory; pass the --out of a 'train cyclegan' run")
    try:  # before TensorFlow loads: bad input fails in a second
        images, assumed = data.prepare_images(_load_npy(args.input))
    except ValueError as e:
        raise ConfigError(f"{args.input}: {e}") from None
    import numpy as np

    from .plots import save_grid
    from .sampling import load_translator, translate

    translated = translate(load_translator(args.run_dir, args.direction), images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npy":
        np.save(args.out, translated)
    else:  # inputs in the first row(s), their translations below, column by column
        cols = min(len(images), 10)
        pairs = [np.concatenate([images[i:i + cols], translated[i:i + cols]])
                 for i in range(0, len(images), cols)]
        save_grid(np.concatenate(pairs), args.out, cols=cols)
    print(f"translated {len(images)} images ({assumed}) {args.direction[0].upper()} -> "
          f"{args.direction[1].upper()} into {args.out}")


def _evaluate(args):
    import json

    import numpy as np

    try:
        dataset = data.canonical_name(args.dataset)
    except data.DataError as e:
        raise ConfigError(str(e)) from None
    if data.is_image_folder(dataset):
        return _evaluate_folder(args, dataset)
    labels = None
    if args.real:
        images, true_labels = data.load(args.dataset, "train", data_dir=args.data_dir)
        images, labels = images[: args.n], true_labels[: args.n]  # intra-class cFID by true class
    elif args.samples is None:
        raise ConfigError("give SAMPLES.npy, or --real to score real images")
    else:
        images = _load_npy(args.samples)
        labels = None if args.labels is None else _load_npy(args.labels)
    try:  # before TensorFlow and the classifier load: a mismatch fails in a second
        data.check_labels(labels, len(images))
    except ValueError as e:
        raise ConfigError(f"{args.labels}: {e}") from None
    from .metrics import Evaluator

    try:
        scores = Evaluator(args.dataset, args.data_dir, _to_stderr).evaluate(images, k=args.k, labels=labels)
    except ValueError as e:
        raise ConfigError(f"{args.samples or 'real images'}: {e}") from None
    if args.real:
        scores["assumed_input"] = f"real {args.dataset} training images (the floor)"
    # JSON has no NaN: a class too rare to score is null.
    for key in ("intra_cfid", "class_recall"):
        scores[key] = [None if np.isnan(v) else v for v in scores[key]]
    for key in ("intra_cfid_mean", "intra_cfid_worst", "class_recall_mean"):
        scores[key] = None if np.isnan(scores[key]) else scores[key]
    print(json.dumps(scores, indent=2))


def _evaluate_folder(args, folder):
    """``evaluate --dataset FOLDER``: scores in the features of an encoder trained on the folder."""
    import json

    if args.labels is not None:
        raise ConfigError("--labels needs a labelled dataset; an image folder has no classes")
    if not args.real and args.samples is None:
        raise ConfigError("give SAMPLES.npy, or --real to score the folder's held-out real pictures")
    images = None if args.real else _load_npy(args.samples)
    size = data.DEFAULT_IMAGE_SIZE if images is None or images.ndim != 4 else images.shape[1]
    if size not in data.IMAGE_SIZES:
        raise ConfigError(f"{args.samples}: images must be N x S x S x 3 with S in "
                          f"{', '.join(map(str, data.IMAGE_SIZES))}; got shape {images.shape}")
    if images is not None:
        try:  # before TensorFlow loads and the encoder trains
            data.prepare_images(images, (size, size, 3))
        except ValueError as e:
            raise ConfigError(f"{args.samples}: {e}") from None
        if len(images) <= max(args.k, DENSITY_K):
            raise ConfigError(f"{args.samples}: need more than {max(args.k, DENSITY_K)} images for the k-NN "
                              f"metrics, got {len(images)}")
    from .folder_metrics import FolderEvaluator

    evaluator = FolderEvaluator(folder, size, log=_to_stderr)
    try:
        scores = evaluator.real_floor(args.k) if args.real else evaluator.evaluate(images, k=args.k)
    except ValueError as e:
        raise ConfigError(f"{args.samples}: {e}") from None
    scores["dataset"] = folder
    if args.real:
        scores["assumed_input"] = "the folder's held-out half of real pictures (the floor)"
    print(json.dumps(scores, indent=2))


def _to_stderr(message):
    """The log of 'evaluate', whose stdout is the JSON of its scores."""
    print(message, file=sys.stderr)


def _load_npy(path):
    import numpy as np

    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        raise ConfigError(f"{path} is not a readable .npy array ({e})") from None


def _train(args):
    config = TrainConfig(
        model=args.model, dataset=args.dataset, image_size=args.image_size, upsampling=args.upsampling,
        width=args.width, augment=args.augment,
        epochs=args.epochs, batch_size=args.batch_size,
        limit=args.limit, seed=args.seed, latent_dim=args.latent_dim, learning_rate=args.lr,
        d_learning_rate=args.d_lr, lr_decay=args.lr_decay,
        beta_1=args.beta1, generator_loss=args.loss, mode_seeking=args.mode_seeking,
        label_channel=args.label_channel, spectral_norm=args.spectral_norm, d_dropout=args.d_dropout,
        r1_weight=args.r1, categories=args.categories, n_critic=args.n_critic,
        gp_weight=args.gp_weight, clip_value=args.clip, mixed_precision=args.mixed_precision,
        bfloat16=args.bfloat16,
        jit_compile=args.xla, ema_decay=args.ema, eval_every=args.eval_every, data_dir=args.data_dir,
        transform=args.transform, cycle_weight=args.cycle_weight, identity_weight=args.identity_weight,
        pool_size=args.pool_size, strategy=args.strategy, frames_per_epoch=args.frames_per_epoch)
    from .runlog import checked_settings

    # A changed setting on resume, or a --data-dir without the data, is refused before TensorFlow loads.
    config = checked_settings(config, args.out)
    if not data.is_image_folder(config.dataset):
        data.find_folder(config.dataset, "train", config.data_dir)
    from .train import train

    # A progress bar redraws itself many times a second: fine on a terminal, thousands of lines in a log.
    on_terminal = sys.stdout.isatty() and sys.stderr.isatty()
    history = train(config, args.out, verbose=2 if on_terminal and not args.quiet else 1)
    if history is None:  # a multi-worker run's other workers
        print(f"done: this worker's part is finished; the chief wrote {args.out}")
    elif config.model in TRANSLATION:
        print(f"done: samples in {args.out / 'samples'}, generators in {args.out / 'generator_ab.keras'} "
              f"and {args.out / 'generator_ba.keras'}")
    else:
        print(f"done: samples in {args.out / 'samples'}, generator in {args.out / 'generator.keras'}")


def _sample(args):
    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    if args.out.suffix not in (".npy", ".png"):
        raise ConfigError(f"--out must end in .npy or .png, got {args.out.name!r}")
    if not args.run_dir.is_dir():
        raise ConfigError(f"{args.run_dir} is not a directory; pass the --out of a 'train' run")
    import numpy as np

    from .models import num_classes_of
    from .plots import save_grid
    from .sampling import balanced_labels, generate, load_generator

    generator = load_generator(args.run_dir)
    try:
        images = generate(generator, args.n, seed=args.seed, labels=args.label)
    except ValueError as e:
        hint = " (train with 'train cgan' to choose classes)" if args.label is not None else ""
        raise ConfigError(f"--label {args.label}: {e}{hint}") from None
    labels = None  # the classes generate() asked for: every class in turn, or the one chosen
    if num_classes_of(generator):
        labels = balanced_labels(args.n) if args.label is None else np.full(args.n, args.label, np.int32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npy":
        np.save(args.out, images)
        if labels is not None:  # for 'evaluate --labels'
            np.save(args.out.with_suffix(".labels.npy"), labels)
    else:
        save_grid(images, args.out)
    what = f" of class {args.label}" if args.label is not None else ""
    print(f"wrote {args.n} images{what} to {args.out}")


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        commands = {"train": _train, "sample": _sample, "evaluate": _evaluate, "translate": _translate}
        commands[args.command](args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        from .checkpoints import CheckpointError
        from .train import TrainingDiverged

        if isinstance(e, (data.DataError, CheckpointError, TrainingDiverged)):
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise
    return 0
