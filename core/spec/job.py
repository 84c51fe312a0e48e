"""The job spec: a declarative description of one training run.

Pure pydantic, no torch: the API validates specs with it and the workers read them with it.
Every field is documented here because these descriptions become the OpenAPI reference.
Unknown fields are rejected everywhere, so a typo is a 422 rather than a silently ignored setting.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from core.spec.catalog import CATALOG, DEFAULT_CLASSES, DEFAULT_FEATURES, DEFAULT_NOISE, DEFAULT_ROWS, Task, names

if TYPE_CHECKING:
    DatasetName = str
else:
    DatasetName = Literal[tuple(CATALOG)]  # the catalog's names, an enum in the OpenAPI schema


def _quoted(datasets: list[str]) -> str:
    return "/".join(f"`{name}`" for name in datasets)


_TAKE_FEATURES = _quoted(names(lambda entry: entry.takes_features))
_TAKE_CLASSES = _quoted(names(lambda entry: entry.takes_classes))

CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")
REGRESSION_LOSSES = ("mse", "mae", "huber")
LossName = Literal["cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"]

COMMON_METRICS = (
    "train_loss", "val_loss", "val_loss_se", "data_loss", "penalty", "weight_l1", "weight_l2", "sparsity",
    "weights_above_threshold", "dead_units", "saturated_units", "baseline_val_loss", "grad_norm", "lr",
    "epoch_seconds", "samples_per_second",
)  # fmt: skip
CLASSIFICATION_METRICS = ("train_accuracy", "val_accuracy", "val_precision", "val_recall", "val_f1")
REGRESSION_METRICS = ("train_mae", "val_mae", "val_rmse", "val_r2")
# Metrics where larger is better; `mode: auto` maximizes these and minimizes everything else.
MAXIMIZED_METRICS = frozenset({"train_accuracy", "val_accuracy", "val_precision", "val_recall", "val_f1", "val_r2"})

Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid"]
Init = Literal["he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "orthogonal", "zeros", "default"]
BatchNormPlacement = Literal["before_activation", "after_activation"]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
DropoutType = Literal["standard", "alpha", "gaussian", "spatial", "dropconnect"]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
# core.states.Priority's values (the engine reads specs without core.states).
PriorityName = Literal["low", "normal", "high"]


def metrics_for(task: Task) -> tuple[str, ...]:
    """Every per-epoch metric key a job of this task reports."""
    specific = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    return COMMON_METRICS + specific


class SpecModel(BaseModel):
    # strict: `true` is not the number 1, nor `2.5` an integer (lax pydantic would take both). Numbers are
    # finite: JSON has no NaN or infinity, and a stored spec must read back as the JSON it was.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class DatasetSpec(SpecModel):
    """Where the data comes from and how it is split. Exactly one of `name` and `id`."""

    name: DatasetName | None = Field(
        None,
        description=f"A built-in scikit-learn data set ({', '.join(names(lambda entry: not entry.synthetic))}) "
        f"or a synthetic generator ({', '.join(names(lambda entry: entry.synthetic))}).",
    )
    id: str | None = Field(None, description="The id of a data set uploaded through POST /v1/datasets.", max_length=64)
    validation_split: Fraction = Field(0.2, description="Fraction of rows held out for validation.")
    test_split: Fraction = Field(0.2, description="Fraction of rows held out for the final test.")
    n_samples: int | None = Field(
        None, ge=20, le=1_000_000, description=f"Synthetic generators only: rows to generate (default {DEFAULT_ROWS})."
    )
    n_features: int | None = Field(
        None,
        ge=2,
        le=10_000,
        description=f"Synthetic {_TAKE_FEATURES} only: feature count (default {DEFAULT_FEATURES}).",
    )
    n_classes: int | None = Field(
        None,
        ge=2,
        le=100,
        description=f"Synthetic {_TAKE_CLASSES} only: class count (default {DEFAULT_CLASSES}).",
    )
    noise: float | None = Field(
        None, ge=0.0, le=100.0, description=f"Synthetic generators only: noise level (default {DEFAULT_NOISE})."
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="Synthetic generators only: generator seed (default: training.seed).",
    )

    @model_validator(mode="after")
    def _check_source(self) -> DatasetSpec:
        if (self.name is None) == (self.id is None):
            raise ValueError("give exactly one of `name` (built-in or synthetic) and `id` (uploaded)")
        if self.validation_split + self.test_split >= 0.9:
            raise ValueError("validation_split + test_split must leave at least 10% of rows for training")
        entry = None if self.name is None else CATALOG[self.name]
        synthetic_only = {"n_samples", "n_features", "n_classes", "noise", "seed"} & self.model_fields_set
        synthetic_only = {f for f in synthetic_only if getattr(self, f) is not None}
        if synthetic_only and (entry is None or not entry.synthetic):
            raise ValueError(f"{sorted(synthetic_only)} apply only to synthetic data sets")
        if self.n_features is not None and entry is not None and entry.input_shape_for(self) != (self.n_features,):
            raise ValueError(f"`{self.name}` has exactly {math.prod(entry.input_shape_for(self))} features")
        if self.n_classes is not None and not (entry is not None and entry.takes_classes):
            raise ValueError(f"`n_classes` applies only to the synthetic {_TAKE_CLASSES} data set")
        return self

    @property
    def task(self) -> Task | None:
        """The task, when the spec alone decides it (uploaded data sets carry their own)."""
        if self.name is None:
            return None
        return CATALOG[self.name].task


class ConvLayerSpec(SpecModel):
    """One convolution block: Conv2d → [BatchNorm] → activation (→ + its input, when residual) → [MaxPool]."""

    filters: int = Field(ge=1, le=1024, description="Output channels.")
    kernel_size: int = Field(3, ge=1, le=11, description="Square kernel size.")
    stride: int = Field(1, ge=1, le=4, description="Step of the convolution: 2 halves the height and width.")
    padding: Literal["same", "valid"] = Field(
        "same",
        description="`same`: kernel_size // 2 zeros around the image (at stride 1 the size is kept); `valid`: "
        "none, so the image shrinks by kernel_size - 1.",
    )
    residual: bool = Field(
        False,
        description="Add the block's input to its output (He et al., 2016); a 1 x 1 convolution matches the "
        "channels and stride when they differ. Needs `padding: same`.",
    )
    pool: int | None = Field(None, ge=2, le=4, description="Max-pool window after the block, if any.")

    @model_validator(mode="after")
    def _residual_keeps_the_size(self) -> ConvLayerSpec:
        if self.residual and self.padding != "same":
            raise ValueError("a `residual` block adds its input to its output: it needs `padding: same`")
        return self


class ModelSpec(SpecModel):
    """The network: an MLP, or a CNN (conv blocks → flatten → hidden layers) for image data."""

    type: Literal["mlp", "cnn"] = Field("mlp", description="`mlp` or `cnn` (image data sets such as digits).")
    hidden_layers: list[Annotated[int, Field(ge=1, le=65_536)]] = Field(
        default_factory=lambda: [64], max_length=64, description="Width of each fully connected hidden layer."
    )
    conv_layers: list[ConvLayerSpec] = Field(
        default_factory=list, max_length=16, description="CNN only: the convolution blocks, in order."
    )
    activation: Activation = Field("relu", description="Activation after each hidden layer.")
    dropout: Probability | list[Probability] = Field(
        0.0,
        description="Dropout after each hidden layer: one rate for all, or one per hidden layer. "
        "Inverted dropout: active in training, off in evaluation.",
    )
    dropout_type: DropoutType = Field(
        "standard",
        description="How `dropout` drops: `standard` (inverted: zero a value with probability p, scale the rest by "
        "1/(1-p)), `alpha` (for SELU: keeps the self-normalizing mean and variance), `gaussian` (multiply by "
        "noise of mean 1 and variance p/(1-p)), `spatial` (whole channels of each conv block, at the largest "
        "rate of `dropout`; CNN only) or `dropconnect` (zero the hidden layers' weights, not their outputs).",
    )
    input_dropout: Probability = Field(0.0, description="Dropout on the inputs (always standard).")
    global_pool: bool = Field(
        False,
        description="CNN only: average each channel over the image (global average pooling) instead of "
        "flattening it, so the first hidden layer sees one number per channel.",
    )
    batch_norm: bool | BatchNormPlacement = Field(
        False,
        description="Batch normalization on each hidden layer: `true` (= before_activation), `false`, "
        "`before_activation` or `after_activation`.",
    )
    init: Init = Field(
        "default",
        description="Weight initialization of Linear/Conv layers (biases start at zero except for "
        "`default`, PyTorch's own).",
    )

    @model_validator(mode="after")
    def _check_shape(self) -> ModelSpec:
        if isinstance(self.dropout, list) and len(self.dropout) != len(self.hidden_layers):
            raise ValueError(f"dropout has {len(self.dropout)} rates for {len(self.hidden_layers)} hidden layers")
        if self.conv_layers and self.type != "cnn":
            raise ValueError("`conv_layers` needs `type: cnn`")
        if self.type == "cnn" and not self.conv_layers:
            raise ValueError("a `cnn` needs at least one entry in `conv_layers`")
        if self.global_pool and self.type != "cnn":
            raise ValueError("`global_pool` averages the channels of conv blocks: it needs `type: cnn`")
        if self.dropout_type == "spatial" and self.type != "cnn":
            raise ValueError("`dropout_type: spatial` drops whole channels of conv blocks: it needs `type: cnn`")
        return self

    @property
    def dropout_rates(self) -> list[float]:
        if isinstance(self.dropout, list):
            return list(self.dropout)
        return [self.dropout] * len(self.hidden_layers)

    @property
    def batch_norm_placement(self) -> BatchNormPlacement | None:
        if self.batch_norm is True:
            return "before_activation"
        return self.batch_norm or None


class RegularizationSpec(SpecModel):
    """Penalties and constraints. `l1` and `l2` apply to the weights of Linear/Conv layers only."""

    l1: float = Field(0.0, ge=0.0, le=10.0, description="Adds l1·Σ|w| to the loss.")
    l2: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="Adds l2·Σw² to the loss (gradient 2·l2·w). With Adam this is not the same as "
        "`optimizer.weight_decay`, which is decoupled (AdamW-style).",
    )
    max_norm: float | None = Field(
        None,
        gt=0.0,
        description="After each step, rescale each unit's incoming weight vector to this L2 norm.",
    )
    gradient_clip_norm: float | None = Field(
        None, gt=0.0, description="Clip the global gradient L2 norm to this value before each step."
    )
    label_smoothing: Probability = Field(0.0, description="Classification only: label smoothing factor.")
    input_noise: float = Field(
        0.0, ge=0.0, le=100.0, description="Std of Gaussian noise added to (standardized) inputs in training."
    )


class LossSpec(SpecModel):
    name: LossName = Field(description="Loss function; must fit the data set's task.")
    delta: float = Field(1.0, gt=0.0, description="Huber only: where the loss turns from quadratic to linear.")


class OptimizerSpec(SpecModel):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = Field("adam", description="The optimizer.")
    lr: float = Field(0.001, gt=0.0, le=10.0, description="Base learning rate.")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="sgd and rmsprop: momentum.")
    nesterov: bool = Field(False, description="sgd only: Nesterov momentum (needs momentum > 0).")
    weight_decay: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Decoupled weight decay applied by the optimizer (AdamW-style for adam/adamw, "
        "PyTorch's coupled decay for sgd/rmsprop). Unlike `regularization.l2`, not part of the loss.",
    )

    @model_validator(mode="after")
    def _check_nesterov(self) -> OptimizerSpec:
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ValueError("`nesterov` needs `name: sgd` and `momentum` > 0")
        return self


class SchedulerSpec(SpecModel):
    """Learning-rate schedule, stepped once per epoch, after an optional linear warm-up."""

    name: Literal["step", "exponential", "cosine", "reduce_on_plateau"] = Field(
        description="The schedule; the fields below say which of them they apply to."
    )
    step_size: int = Field(10, ge=1, description="step: epochs between decays.")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="step/exponential: decay factor.")
    t_max: int | None = Field(None, ge=1, description="cosine: period in epochs (default: training.epochs).")
    eta_min: float = Field(0.0, ge=0.0, description="cosine: the lowest learning rate.")
    factor: float = Field(0.1, gt=0.0, lt=1.0, description="reduce_on_plateau: decay factor.")
    patience: int = Field(10, ge=0, description="reduce_on_plateau: epochs without improvement before decay.")
    monitor: str = Field("val_loss", description="reduce_on_plateau: the metric watched (minimized).")
    warmup_epochs: int = Field(0, ge=0, le=10_000, description="Linear warm-up from lr/warmup to lr.")


class TrainingSpec(SpecModel):
    epochs: int = Field(100, ge=1, le=100_000, description="Maximum epochs.")
    batch_size: int = Field(64, ge=1, le=65_536, description="Mini-batch size for training.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds the split, the initialization and the shuffling.")
    max_wall_seconds: float | None = Field(
        None, gt=0, description="Stop with `stop_reason: timeout` after this much training time."
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="`bf16` runs the forward pass under bfloat16 autocast on a CUDA device; it pays only for "
        "networks wide enough that matrix products dominate a step (on an H200 the MLP and CNN examples trained "
        "7 % and 31 % slower with it: BENCHMARKS.md). On the CPU every job trains in fp32.",
    )


class EarlyStoppingSpec(SpecModel):
    """Stop when the monitored metric stops improving. See docs/early-stopping.md for exact semantics."""

    monitor: str = Field("val_loss", description="Any per-epoch metric key of the job's task.")
    mode: Literal["min", "max", "auto"] = Field(
        "auto", description="`auto` maximizes accuracy/precision/recall/F1/R² and minimizes the rest."
    )
    patience: int = Field(10, ge=0, le=100_000, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0.0, description="An improvement must beat the best by more than this.")
    baseline: float | None = Field(
        None, description="Stop after `patience` epochs if the metric has not beaten this value."
    )
    start_from_epoch: int = Field(0, ge=0, description="Epochs to train before improvements are tracked.")
    restore_best_weights: bool = Field(True, description="Keep the best epoch's weights at the end.")
    stopping_threshold: float | None = Field(None, description="Stop as soon as the metric reaches this value.")
    divergence_threshold: float | None = Field(
        None, description="Stop with `diverged` as soon as the metric is this bad or worse."
    )

    @field_validator("divergence_threshold")
    @classmethod
    def _diverges_on_the_bad_side(cls, value: float | None, info: ValidationInfo) -> float | None:
        """A divergence threshold the metric reaches no later than the stopping threshold would call every
        run that succeeds diverged."""
        stopping, mode = info.data.get("stopping_threshold"), info.data.get("mode")
        if value is None or stopping is None or mode is None:
            return value
        maximized = mode == "max" or (mode == "auto" and info.data.get("monitor") in MAXIMIZED_METRICS)
        if (value >= stopping) if maximized else (value <= stopping):
            side, direction = ("below", "maximized") if maximized else ("above", "minimized")
            raise ValueError(f"must lie {side} `stopping_threshold` ({stopping}) for a {direction} metric")
        return value


class InitFromSpec(SpecModel):
    """Warm start from the kept weights of a succeeded job, or from a model (POST /v1/models): exactly one."""

    job_id: str | None = Field(None, max_length=64, description="A succeeded job whose weights are loaded.")
    model_id: str | None = Field(
        None, max_length=64, description="A model (uploaded, or saved from a job) whose weights are loaded."
    )
    freeze: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list,
        description="Indices of trainable layers (0 = first) whose parameters are frozen.",
    )
    reset_head: bool = Field(True, description="Re-initialize the output layer when the output size differs.")

    @model_validator(mode="after")
    def _one_source(self) -> InitFromSpec:
        if (self.job_id is None) == (self.model_id is None):
            raise ValueError("give exactly one of `job_id` and `model_id`")
        return self


class AugmentationSpec(SpecModel):
    """Applied to each training batch on the device, drawn from the training seed; never to validation or test
    data. Gaussian input noise is `regularization.input_noise`."""

    crop_padding: int = Field(
        0,
        ge=0,
        le=16,
        description="Image data sets: pad each image with this many pixels of zeros and cut it back to its size at "
        "a random offset (a random crop: shifts of up to this many pixels).",
    )
    flip: bool = Field(False, description="Image data sets: flip each image left to right with probability 1/2.")
    cutout: int = Field(
        0, ge=0, le=64, description="Image data sets: zero a square of this side at a random place in each image."
    )
    mixup: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="Mixup's alpha (Zhang et al., 2018): each batch is mixed with a shuffled copy of itself by λ drawn "
        "from Beta(alpha, alpha), and its loss is the same mix of the two rows' losses; 0 is off. Any task.",
    )

    @property
    def on_images(self) -> bool:
        return bool(self.crop_padding or self.flip or self.cutout)


class AnalysisSpec(SpecModel):
    """Analyses a worker runs after the job succeeds, besides the pruning report and (classification) the
    confusion matrix, which every job gets."""

    landscape: bool = Field(
        False,
        description="Loss slices along filter-normalized random directions, the top Hessian eigenvalue and trace, "
        "and ε-sharpness, at the kept weights (GET /v1/jobs/{id}/landscape).",
    )


class JobSpec(SpecModel):
    """A complete, declarative description of one training job.

    Checks that depend on the data set's task (a loss that fits it, a monitored metric it reports)
    need the task, which an uploaded data set only knows in the database: `with_task` runs them.
    """

    name: str | None = Field(None, min_length=1, max_length=200, description="A label for people.")
    priority: PriorityName = Field(
        "normal",
        description="How soon it starts: every queued `high` job before any `normal` one, and every `normal` one "
        "before any `low` one; up to your `max_priority` limit (GET /v1/me). A sweep's trials take the sweep's.",
    )
    dataset: DatasetSpec = Field(description="The data to train on: a built-in, synthetic or uploaded data set.")
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(), description="The network: MLP or CNN.")
    regularization: RegularizationSpec = Field(
        default_factory=lambda: RegularizationSpec(),
        description="Weight penalties, norm constraints, gradient clipping, label smoothing, input noise.",
    )
    loss: LossName | LossSpec | None = Field(
        None,
        description="A loss name or `{name, delta}`. Default: cross_entropy for classification, mse for regression.",
    )
    optimizer: OptimizerSpec = Field(default_factory=lambda: OptimizerSpec(), description="How weights are updated.")
    scheduler: SchedulerSpec | None = Field(None, description="Learning-rate schedule; none keeps lr fixed.")
    training: TrainingSpec = Field(
        default_factory=lambda: TrainingSpec(), description="Epochs, batch size, seed and time limit."
    )
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="Early stopping; without it a job trains for `training.epochs`."
    )
    init_from: InitFromSpec | None = Field(None, description="Warm start from another job's weights.")
    analysis: AnalysisSpec | None = Field(None, description="Analyses to run once the job has succeeded.")
    augmentation: AugmentationSpec | None = Field(None, description="Data augmentation of the training batches.")

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_object(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @property
    def loss_spec(self) -> LossSpec:
        """The loss, with the task's default filled in (needs the task for uploaded data sets)."""
        assert isinstance(self.loss, LossSpec), "resolve the default loss with with_task() first"
        return self.loss

    def with_task(self, task: Task) -> JobSpec:
        """This spec with the task's default loss filled in, after checking that everything fits the task."""
        check_task_fit(self, task)
        if self.loss is not None:
            return self
        return self.model_copy(update={"loss": LossSpec(name=default_loss(task))})


def output_size(task: Task, loss: LossSpec, n_classes: int) -> int:
    """Outputs of the network: one for regression and for binary cross-entropy on two classes, else one per class."""
    if task == "regression" or (loss.name == "binary_cross_entropy" and n_classes == 2):
        return 1
    return n_classes


def default_loss(task: Task) -> LossName:
    return "cross_entropy" if task == "classification" else "mse"


class SpecTaskError(ValueError):
    """A spec field that does not fit the data set's task; `field` is the dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_task_fit(spec: JobSpec, task: Task) -> None:
    """Raise SpecTaskError naming the first field that does not fit a classification/regression task."""
    loss = spec.loss.name if isinstance(spec.loss, LossSpec) else default_loss(task)
    allowed = CLASSIFICATION_LOSSES if task == "classification" else REGRESSION_LOSSES
    if loss not in allowed:
        raise SpecTaskError("loss", f"loss `{loss}` does not fit a {task} data set; use one of {list(allowed)}")
    if task == "regression" and spec.regularization.label_smoothing > 0:
        raise SpecTaskError("regularization.label_smoothing", "label smoothing applies to classification only")
    known = metrics_for(task)
    if spec.early_stopping is not None and spec.early_stopping.monitor not in known:
        raise SpecTaskError(
            "early_stopping.monitor",
            f"`{spec.early_stopping.monitor}` is not a metric of a {task} job; one of {list(known)}",
        )
    if spec.scheduler is not None and spec.scheduler.monitor not in known:
        raise SpecTaskError(
            "scheduler.monitor",
            f"`{spec.scheduler.monitor}` is not a metric of a {task} job; one of {list(known)}",
        )
    # An uploaded set's shape is in its row, which admission checks (core/jobs/admission.py).
    on_images = spec.augmentation is not None and spec.augmentation.on_images
    if on_images and spec.dataset.name is not None and not CATALOG[spec.dataset.name].image:
        raise SpecTaskError(
            "augmentation",
            f"crops, flips and cutout need an image data set ({', '.join(names(lambda entry: entry.image))})",
        )
    if spec.model.type == "cnn" and spec.dataset.name is not None and not CATALOG[spec.dataset.name].image:
        raise SpecTaskError(
            "model.type", f"`cnn` needs an image data set ({', '.join(names(lambda entry: entry.image))})"
        )
