"""The manifest's schema (pydantic v2), versioned with the manifest (:data:`torchzoo.core.artifact.SCHEMA_VERSION`).

An artifact is input from whoever made or copied it, and its sha256 seal can be recomputed by anyone, so
the runtime believes nothing in a manifest until it has passed this schema: types, required keys, bounds
(taken from :mod:`torchzoo.core.limits`, never from the manifest), an alphabet without duplicates, finite
normalization constants, known preprocessing and postprocessing kinds, input/output specs that fit the
preprocessing, and a label count equal to the output width. :func:`check_against_graph` then compares the
specs with the graph's own inputs and outputs, as onnxruntime reads them, before anything is run.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from torchzoo.core import limits
from torchzoo.core.errors import ArtifactError

VERSION = 1
#: inputs and outputs one model may declare
MAX_MODEL_INPUTS = 16
MAX_MODEL_OUTPUTS = 16
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(allow_inf_nan=False, gt=0)]
Text = Annotated[str, StringConstraints(max_length=limits.MAX_TEXT_CHARS)]
ModelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
TensorName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$")]
Dim = (
    Annotated[int, Field(ge=1, le=limits.MAX_TENSOR_DIM)]
    | Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
)
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
DType = Literal["float32", "float64", "int64", "int32", "bool"]


def _shown(text: str) -> None:
    """Labels and letters are shown to people: no control or format characters."""
    if any(unicodedata.category(ch) in _HIDDEN for ch in text):
        raise ValueError("holds control or format characters")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TensorEntry(_Strict):
    name: TensorName
    shape: Annotated[list[Dim], Field(min_length=1, max_length=limits.MAX_TENSOR_RANK)]
    dtype: DType
    description: Text = ""

    @field_validator("shape")
    @classmethod
    def _batch_first(cls, shape: list[int | str]) -> list[int | str]:
        if not isinstance(shape[0], str):
            raise ValueError("the first dimension must be the (symbolic) batch dimension")
        return shape


class NamesPreprocessing(_Strict):
    kind: Literal["names_one_hot"]
    alphabet: Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_ALPHABET)]
    max_length: Annotated[int, Field(ge=1, le=limits.MAX_NAME_CHARS)]
    description: Text = ""

    @field_validator("alphabet")
    @classmethod
    def _letters(cls, alphabet: str) -> str:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("duplicate letters")
        _shown(alphabet)
        if not any(ch.isalpha() for ch in alphabet):
            raise ValueError("no letters")
        return alphabet


class ImagePreprocessing(_Strict):
    kind: Literal["image"]
    mode: Literal["L", "RGB"]
    size: Annotated[list[Annotated[int, Field(ge=1, le=limits.MAX_IMAGE_SIDE)]], Field(min_length=2, max_length=2)]
    scale: Positive
    mean: list[Finite]
    std: list[Positive]
    layout: Text = ""
    description: Text = ""

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3

    @model_validator(mode="after")
    def _per_channel(self) -> ImagePreprocessing:
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean/std: {self.channels} value(s) needed for mode {self.mode}")
        return self


class FeaturesPreprocessing(_Strict):
    kind: Literal["features"]
    n_features: Annotated[int, Field(ge=1, le=limits.MAX_FEATURES)]
    feature_names: list[Annotated[str, StringConstraints(max_length=limits.MAX_LABEL_CHARS)]]
    mean: list[Finite] | None = None
    std: list[Positive] | None = None
    dtype: DType
    description: Text = ""

    @model_validator(mode="after")
    def _per_feature(self) -> FeaturesPreprocessing:
        if len(self.feature_names) != self.n_features:
            raise ValueError(f"feature_names: {len(self.feature_names)} names for n_features={self.n_features}")
        for name in self.feature_names:
            _shown(name)
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean/std: give both or neither")
        if self.mean is not None and self.std is not None and not (len(self.mean) == len(self.std) == self.n_features):
            raise ValueError(f"mean/std: {self.n_features} values needed")
        return self


class TensorsPreprocessing(_Strict):
    """No preprocessing: the model takes its tensors as they are (a user's own model, :func:`torchzoo.package`)."""

    kind: Literal["tensors"]
    description: Text = ""


Preprocessing = Annotated[
    NamesPreprocessing | ImagePreprocessing | FeaturesPreprocessing | TensorsPreprocessing,
    Field(discriminator="kind"),
]


class Postprocessing(_Strict):
    output: TensorName
    transform: Literal["identity", "exp", "softmax", "sigmoid"] = "identity"
    scale: Finite = 1.0
    offset: Finite = 0.0


class FileEntry(_Strict):
    sha256: Sha256
    bytes: Annotated[int, Field(ge=0, le=limits.MAX_GRAPH_BYTES)]


#: transforms that make sense per task (a probability task never reports raw logits as probabilities)
TRANSFORMS = {
    "classification": {"exp", "softmax", "identity"},
    "binary": {"sigmoid", "identity"},
    "multilabel": {"sigmoid", "identity"},
    "regression": {"identity"},
    "tensor": {"identity"},
}


class Manifest(BaseModel):
    """What the runtime uses is typed strictly; descriptive keys (metrics, recipe, versions...) may be any
    JSON, checked only for finite numbers and bounded depth."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    schema_version: Literal[1]
    model: ModelName
    task: Literal["classification", "binary", "multilabel", "regression", "tensor"]
    summary: Text = ""
    labels: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_LABEL_CHARS)]],
        Field(max_length=limits.MAX_LABELS),
    ]
    inputs: Annotated[list[TensorEntry], Field(min_length=1, max_length=MAX_MODEL_INPUTS)]
    outputs: Annotated[list[TensorEntry], Field(min_length=1, max_length=MAX_MODEL_OUTPUTS)]
    preprocessing: Preprocessing
    postprocessing: Postprocessing | None = None
    files: Annotated[dict[str, FileEntry], Field(max_length=limits.MAX_ARTIFACT_FILES)]
    formats: dict[str, dict[str, Any]] = {}
    manifest_sha256: Sha256

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        for label in labels:
            _shown(label)
        if len(set(labels)) != len(labels):
            raise ValueError("duplicate labels")
        return labels

    @field_validator("files")
    @classmethod
    def _file_names(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        from torchzoo.core.safe_io import is_plain_name

        for name in files:
            if not is_plain_name(name) or name in ("manifest.json", "model.sig"):
                raise ValueError(f"{name[:60]!r} is not a plain file name of the artifact")
        return files

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        out = self.outputs[0]
        pre = self.preprocessing
        if len({t.name for t in self.inputs + self.outputs}) != len(self.inputs) + len(self.outputs):
            raise ValueError("outputs: input and output names must be distinct")
        batch = {str(t.shape[0]) for t in self.inputs}
        if len(batch) != 1:
            raise ValueError(
                f"inputs: every input's first dimension must be the same batch dimension, not {sorted(batch)}"
            )
        if self.postprocessing is not None and self.postprocessing.output != out.name:
            raise ValueError(
                f"postprocessing.output: {self.postprocessing.output!r} is not the first output {out.name!r}"
            )
        transform = self.postprocessing.transform if self.postprocessing else "identity"
        if transform not in TRANSFORMS[self.task]:
            raise ValueError(f"postprocessing.transform: {transform!r} does not fit a {self.task} model")
        if not isinstance(pre, TensorsPreprocessing):
            if len(self.inputs) != 1:
                raise ValueError(f"inputs: {pre.kind} preprocessing makes one input, not {len(self.inputs)}")
            _check_input(self.inputs[0], pre)
        if self.task == "tensor":
            if self.labels:
                raise ValueError("labels: a tensor model has no labels")
            return self
        if len(out.shape) != 2 or not isinstance(out.shape[1], int):
            raise ValueError(f"outputs.0.shape: {out.shape} is not [batch, width]")
        if out.dtype not in ("float32", "float64"):
            raise ValueError(f"outputs.0.dtype: a {self.task} model's scores are float32 or float64, not {out.dtype}")
        width, count = out.shape[1], len(self.labels)
        expected = {"binary": 2, "regression": 0}.get(self.task, width)
        if self.task == "binary" and width != 1:
            raise ValueError(f"outputs.0.shape: a binary model outputs one probability, not {width}")
        if count != expected:
            raise ValueError(f"labels: {count} labels for an output of width {width} ({self.task})")
        return self


def _check_input(spec: TensorEntry, pre: Any) -> None:
    shape = spec.shape
    if isinstance(pre, NamesPreprocessing):
        if len(shape) != 3 or shape[2] != len(pre.alphabet) or spec.dtype != "float32":
            raise ValueError(f"inputs.0: {shape} {spec.dtype} is not [batch, seq, {len(pre.alphabet)}] float32")
    elif isinstance(pre, ImagePreprocessing):
        rest = shape[1:]
        pixels = pre.channels * pre.size[0] * pre.size[1]
        if (
            not rest
            or not all(isinstance(d, int) for d in rest)
            or math.prod(rest) != pixels
            or spec.dtype != "float32"
        ):
            raise ValueError(f"inputs.0: {shape} {spec.dtype} does not hold {pixels} float32 values per image")
    elif len(shape) != 2 or shape[1] != pre.n_features or spec.dtype != pre.dtype:
        raise ValueError(f"inputs.0: {shape} {spec.dtype} is not [batch, {pre.n_features}] {pre.dtype}")


def _finite_json(value: Any, where: str, depth: int = 0) -> None:
    """Descriptive keys may hold any JSON, but no NaN/infinity (output must stay valid JSON) and no deep nesting."""
    if depth > 32:
        raise ArtifactError(f"{where}: nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise ArtifactError(f"{where}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_json(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite_json(item, f"{where}.{index}", depth + 1)


def _where(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    if len(loc) >= 2 and loc[0] == "preprocessing" and loc[1] in ("names_one_hot", "image", "features", "tensors"):
        del loc[1]  # the discriminator's tag, not a key of the manifest
    message = str(error["msg"]).removeprefix("Value error, ")
    head, sep, tail = message.partition(": ")
    if sep and not loc and ("." in head or head in ("labels", "outputs", "inputs")):
        return f"{head}: {tail}"  # a cross-field check names its field itself
    if sep and loc and head in ("mean/std", "feature_names"):
        return f"{'.'.join(loc)}.{head}: {tail}"
    return f"{'.'.join(loc) or 'manifest'}: {message}"


def validate(manifest: dict[str, Any], shown: str) -> Manifest:
    """The validated manifest, or an ArtifactError ``<shown>: <field>: <what is wrong>`` naming the first field."""
    try:
        model = Manifest.model_validate(manifest)
    except ValidationError as exc:
        raise ArtifactError(f"{shown}: {_where(exc.errors()[0])}") from None
    for key in manifest:
        _finite_json(manifest[key], f"{shown}: {key}")
    return model


ORT_TYPES = {
    "float32": "tensor(float)",
    "float64": "tensor(double)",
    "int64": "tensor(int64)",
    "int32": "tensor(int32)",
    "bool": "tensor(bool)",
}


def check_against_graph(manifest: dict[str, Any], session: Any, shown: str) -> None:
    """The manifest's inputs/outputs must be the graph's own (names, order, ranks, dtypes, fixed sizes), as the
    onnxruntime ``session`` reads them; checked right after the session is created, before any run."""
    for what, specs, nodes in (
        ("inputs", manifest["inputs"], session.get_inputs()),
        ("outputs", manifest["outputs"], session.get_outputs()),
    ):
        names = [n.name for n in nodes]
        if [s["name"] for s in specs] != names[: len(specs)] or (what == "inputs" and len(specs) != len(names)):
            raise ArtifactError(f"{shown}: {what}: {[s['name'] for s in specs]} are not the graph's {what} {names}")
        for index, (spec, node) in enumerate(zip(specs, nodes, strict=False)):
            field = f"{shown}: {what}.{index}"
            if ORT_TYPES[spec["dtype"]] != node.type:
                raise ArtifactError(f"{field}.dtype: {spec['dtype']} but the graph's {node.name!r} is {node.type}")
            graph_shape = list(node.shape) if node.shape is not None else None
            if graph_shape is None or len(graph_shape) != len(spec["shape"]):
                raise ArtifactError(f"{field}.shape: rank {len(spec['shape'])} but the graph's is {graph_shape}")
            for mine, theirs in zip(spec["shape"], graph_shape, strict=True):
                if isinstance(theirs, int) and mine != theirs:
                    raise ArtifactError(f"{field}.shape: {spec['shape']} but the graph's is {graph_shape}")
