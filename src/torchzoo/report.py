"""``torchzoo report``: the tutorials' seed-by-seed analyses as one Markdown page with PNG plots.

Reads the trained artifacts under an artifact root (``<root>/<model>/train.json``, ``history.json``,
``metrics.json``, ``model.pt``) and writes ``<root>/report.md`` with its images in ``<root>/report/``
(referenced by relative paths, so the page renders wherever the root is copied). Sections:

1. MNIST MLP activations: validation accuracy per epoch of the depth-4 MLPs (relu, sigmoid, tanh, elu,
   leaky ReLU) in one plot, and a table of final/best validation accuracy, test accuracy, train time.
2. MNIST MLP depth: the same for the ReLU MLPs of depth 3, 4, 5 and 7.
3. Loss per iteration of the best MLP (highest test accuracy): every iteration's training loss, epochs
   concatenated, raw and as a moving average.
4. House fits per final activation: the 12 (size, price) points and each trained neuron's curve, evaluated
   on a grid of raw sizes through the recorded preprocessing; a table of final MSE.
5. Moons decision boundary: the model's probability over a grid, the test points coloured by class.
6. Summary: every trained model's headline metric (the first numeric metric), profile and train time.

A section whose models are not trained says so in one line. Models are evaluated in torch (eager), from
their state_dict; nothing is exported. Files are written atomically; PNGs of an earlier report that this
one no longer references are removed from ``<root>/report/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from torchzoo import __version__
from torchzoo.core import artifact
from torchzoo.core.clock import utc_minute
from torchzoo.core.errors import UserInputError
from torchzoo.core.feature_codec import standardize
from torchzoo.train import house, mnist_mlp, registry
from torchzoo.train.runner import load_trained
from torchzoo.train.spec import ModelSpec

REPORT_MD = "report.md"
REPORT_DIR = "report"
REFERENCE_DEPTH = 4  # the activation comparison uses the depth-4 MLPs
REFERENCE_ACTIVATION = "relu"  # the depth comparison uses the ReLU MLPs
MOONS_MODEL = "moons"
GRID_POINTS = 200  # house curve samples; moons grid is GRID_POINTS x GRID_POINTS
DPI = 100
LINE_STYLES = ("-", "--", ":", "-.")


@dataclass
class Trained:
    """One trained model's records, read from its artifact directory."""

    spec: ModelSpec
    record: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]

    @property
    def seconds(self) -> float | None:
        return self.record.get("train_seconds")

    @property
    def profile(self) -> str:
        return str(self.record.get("profile", "-"))


@dataclass
class ReportResult:
    path: Path
    images: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # titles of the sections that had nothing to show


class Report:
    """The Markdown lines and the images written so far."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lines: list[str] = []
        self.images: list[Path] = []
        self.skipped: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def section(self, title: str) -> None:
        self.add(f"## {title}", "")

    def skip(self, title: str, note: str) -> None:
        self.skipped.append(title)
        self.add(f"_Skipped: {note}_", "")

    def figure(self, fig: Figure, name: str, alt: str) -> None:
        """Save ``fig`` as ``report/<name>.png`` (atomically) and reference it from the page."""
        target = self.root / REPORT_DIR / f"{name}.png"
        fig.tight_layout()
        with artifact.atomic_path(target) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
        plt.close(fig)
        self.images.append(target)
        self.add(f"![{alt}]({REPORT_DIR}/{name}.png)", "")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.add("| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|")
        self.add(*("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows))
        self.add("")


# --- reading artifacts --------------------------------------------------------------------------------


def read_trained(root: Path) -> dict[str, Trained]:
    """Every registered model that has a ``train.json`` under ``root``, in registry order."""
    found: dict[str, Trained] = {}
    for spec in registry.models():
        directory = root / spec.name
        if not (directory / artifact.TRAIN_RECORD).is_file():
            continue
        record = artifact.read_json(directory / artifact.TRAIN_RECORD)
        metrics_path, history_path = directory / artifact.METRICS, directory / artifact.HISTORY
        metrics = artifact.read_json(metrics_path) if metrics_path.is_file() else record.get("metrics", {})
        history = artifact.read_json(history_path) if history_path.is_file() else []
        found[spec.name] = Trained(spec, record, metrics or {}, history or [])
    return found


def headline(metrics: dict[str, Any]) -> tuple[str, float] | None:
    """The first numeric metric (the family puts its headline metric first)."""
    for key, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            return key, float(value)
    return None


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values; one output per input from index ``window - 1`` on."""
    if window <= 1 or len(values) < window:
        return values.copy()
    cumulative = np.cumsum(np.insert(values.astype(np.float64), 0, 0.0))
    return (cumulative[window:] - cumulative[:-window]) / window


# --- sections -------------------------------------------------------------------------------------------


def _mlp_specs(selected: Callable[[dict[str, Any]], bool]) -> list[ModelSpec]:
    return [s for s in registry.models() if s.family is mnist_mlp.FAMILY and selected(s.options)]


def _untrained_note(names: Sequence[str]) -> str:
    if len(names) == 1:
        return f"{names[0]} is not trained (run 'torchzoo train {names[0]}')."
    return f"none of {', '.join(names)} is trained (run 'torchzoo train {names[0]}')."


def accuracy_section(
    report: Report,
    trained: dict[str, Trained],
    title: str,
    specs: Sequence[ModelSpec],
    variant: Callable[[ModelSpec], str],
    image: str,
) -> None:
    """Validation accuracy per epoch of ``specs`` in one plot, and their accuracy table."""
    report.section(title)
    names = [s.name for s in specs]
    present = [trained[n] for n in names if n in trained and trained[n].history]
    if not present:
        report.skip(title, _untrained_note(names))
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for t in present:
        epochs = [row["epoch"] for row in t.history if "val_acc" in row]
        values = [row["val_acc"] for row in t.history if "val_acc" in row]
        ax.plot(epochs, values, marker="o", markersize=4, label=f"{t.spec.name} ({variant(t.spec)})")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    report.figure(fig, image, f"{title}: validation accuracy per epoch")
    rows = []
    for t in present:
        val = [row["val_acc"] for row in t.history if "val_acc" in row]
        rows.append(
            [
                t.spec.name,
                variant(t.spec),
                len(t.history),
                fmt(val[-1] if val else None),
                fmt(max(val) if val else None),
                fmt(t.metrics.get("test_accuracy")),
                fmt(t.seconds, 1),
                t.profile,
            ]
        )
    report.table(
        ["model", "variant", "epochs", "final val acc", "best val acc", "test accuracy", "train seconds", "profile"],
        rows,
    )
    missing = [n for n in names if n not in {t.spec.name for t in present}]
    if missing:
        report.add(f"Not trained: {', '.join(missing)}.", "")


def loss_section(report: Report, trained: dict[str, Trained]) -> None:
    """Every iteration's training loss of the MLP with the highest test accuracy."""
    title = "Loss per iteration of the best MNIST MLP"
    report.section(title)
    names = [s.name for s in _mlp_specs(lambda _: True)]
    mlps = [trained[n] for n in names if n in trained and "test_accuracy" in trained[n].metrics]
    if not mlps:
        report.skip(title, _untrained_note(names))
        return
    best = max(mlps, key=lambda t: t.metrics["test_accuracy"])
    per_epoch = [row.get("iteration_losses") or [] for row in best.history]
    losses = np.array([loss for epoch in per_epoch for loss in epoch], dtype=np.float64)
    if losses.size == 0:
        report.skip(title, f"{best.spec.name}'s history.json has no iteration_losses (retrain it).")
        return
    window = max(1, min(100, losses.size // 10))
    smooth = moving_average(losses, window)
    iterations = np.arange(1, losses.size + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(iterations, losses, linewidth=0.6, alpha=0.4, label="training loss (per iteration)")
    ax.plot(iterations[len(iterations) - len(smooth) :], smooth, linewidth=1.8, label=f"moving average ({window})")
    boundaries = np.cumsum([len(e) for e in per_epoch])[:-1]
    for boundary in boundaries:
        ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("iteration" + (" (dotted: epoch ends)" if len(boundaries) else ""))
    ax.set_ylabel("loss")
    ax.set_yscale("log" if losses.min() > 0 and losses.max() / losses.min() > 50 else "linear")
    ax.set_title(f"{best.spec.name}: training loss per iteration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    report.figure(fig, "mlp_best_loss", f"{best.spec.name}: loss per iteration")
    report.add(
        f"Best of {len(mlps)} trained MLP(s): **{best.spec.name}** (test accuracy "
        f"{best.metrics['test_accuracy']:.4f}, {best.profile} profile). {losses.size:,} iterations over "
        f"{len(per_epoch)} epoch(s); loss {smooth[0]:.4f} -> {smooth[-1]:.4f} (moving average of {window}).",
        "",
    )


@torch.no_grad()
def _evaluate(model: torch.nn.Module, raw: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """The model's first output for raw feature rows, through the recorded preprocessing."""
    inputs = torch.from_numpy(standardize(raw, preprocessing))
    return model(inputs).reshape(len(raw), -1)[:, 0].double().numpy()


def house_section(report: Report, trained: dict[str, Trained], root: Path) -> None:
    """The data points and every trained house neuron's fitted curve, in raw size and price units."""
    title = "House price fits per final activation"
    report.section(title)
    specs = [s for s in registry.models() if s.family is house.FAMILY]
    present = [trained[s.name] for s in specs if s.name in trained]
    if not present:
        report.skip(title, _untrained_note([s.name for s in specs]))
        return
    dataset = present[0].record.get("dataset", {})
    if "size_m2" not in dataset or "price" not in dataset:
        report.skip(title, f"{present[0].spec.name}'s train.json lacks the data points (retrain it).")
        return
    sizes, prices = np.array(dataset["size_m2"], dtype=np.float64), np.array(dataset["price"], dtype=np.float64)
    margin = 0.1 * (sizes.max() - sizes.min())
    grid = np.linspace(sizes.min() - margin, sizes.max() + margin, GRID_POINTS)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(sizes, prices, color="black", zorder=3, label=f"{len(sizes)} data points")
    rows = []
    for index, t in enumerate(present):
        model, record = load_trained(t.spec, root)
        curve = _evaluate(model, grid.reshape(-1, 1), record["preprocessing"])
        activation = t.spec.options.get("activation", "-")
        style = LINE_STYLES[index % len(LINE_STYLES)]  # curves that coincide stay visible
        ax.plot(
            grid,
            curve,
            linestyle=style,
            linewidth=1.6,
            label=f"{activation} (MSE {fmt(t.metrics.get('final_mse'), 3)})",
        )
        rows.append(
            [
                t.spec.name,
                activation,
                fmt(t.metrics.get("final_mse")),
                fmt(t.metrics.get("initial_mse"), 2),
                fmt(t.seconds, 2),
                t.profile,
            ]
        )
    low, high = prices.min(), prices.max()
    ax.set_ylim(low - 0.5 * (high - low), high + 0.5 * (high - low))  # a diverged curve does not hide the rest
    unit = dataset.get("price_unit")
    ax.set_xlabel("size (m^2)")
    ax.set_ylabel(f"price (units of {unit:,})" if isinstance(unit, int | float) else "price")
    ax.set_title("House price: one neuron per final activation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    report.figure(fig, "house_fits", "house price fits per final activation")
    report.table(["model", "final activation", "final MSE", "initial MSE", "train seconds", "profile"], rows)
    if dataset.get("stand_in"):
        report.add("The 12 points are a documented stand-in (see the model's train.json `dataset`).", "")
    missing = [s.name for s in specs if s.name not in trained]
    if missing:
        report.add(f"Not trained: {', '.join(missing)}.", "")


def moons_section(report: Report, trained: dict[str, Trained], root: Path) -> None:
    """The moons model's probability over a grid, with the test points coloured by class."""
    title = "Moons decision boundary"
    report.section(title)
    if MOONS_MODEL not in trained:
        report.skip(title, _untrained_note([MOONS_MODEL]))
        return
    t = trained[MOONS_MODEL]
    model, record = load_trained(t.spec, root)
    preprocessing = record["preprocessing"]
    data = t.spec.family.load_data(t.spec, None, int(record.get("seed", 0)))
    inputs, target = data.test
    points = inputs.double().numpy()
    if preprocessing.get("mean") is not None:  # model inputs back to raw coordinates
        points = points * np.asarray(preprocessing["std"]) + np.asarray(preprocessing["mean"])
    labels = target.reshape(-1).numpy() > 0.5
    (x_low, y_low), (x_high, y_high) = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(x_low, x_high, GRID_POINTS), np.linspace(y_low, y_high, GRID_POINTS))
    prob = _evaluate(model, np.column_stack([gx.ravel(), gy.ravel()]), preprocessing).reshape(gx.shape)
    names = record.get("labels") or ["class 0", "class 1"]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    filled = ax.contourf(gx, gy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
    ax.contour(gx, gy, prob, levels=[0.5], colors="black", linewidths=1.2)
    fig.colorbar(filled, ax=ax, label=f"P({names[1]})")
    for value, colour, name in ((False, "tab:blue", names[0]), (True, "tab:red", names[1])):
        chosen = labels == value
        ax.scatter(points[chosen, 0], points[chosen, 1], s=14, c=colour, edgecolors="white", linewidths=0.5, label=name)
    accuracy = t.metrics.get("test_accuracy")
    ax.set_title(f"moons: P(moon 1), boundary at 0.5; test accuracy {fmt(accuracy)}")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(fontsize=8, loc="upper right")
    report.figure(fig, "moons_boundary", "moons decision boundary with the test points")
    report.add(
        f"Test accuracy **{fmt(accuracy)}** on {len(labels)} test points ({t.profile} profile, seed "
        f"{record.get('seed', 0)}); the black line is P = 0.5.",
        "",
    )


def confusion_section(report: Report, trained: dict[str, Trained], root: Path) -> None:
    """The confusion matrices training wrote next to the model (the names models': ``confusion.png``)."""
    shown = [name for name in trained if (root / name / "confusion.png").is_file()]
    if not shown:
        return
    report.section("Confusion matrices (held-out, rows normalized)")
    for name in shown:
        metrics = trained[name].metrics
        accuracy, balanced = fmt(metrics.get("test_accuracy")), fmt(metrics.get("test_balanced_accuracy"))
        report.add(f"**{name}** ({trained[name].profile} profile): accuracy {accuracy}, balanced {balanced}", "")
        report.add(f"![{name} confusion matrix]({name}/confusion.png)", "")


def summary_section(report: Report, trained: dict[str, Trained]) -> None:
    """Every trained model's headline metric, profile and train time."""
    report.section("Summary of every trained model")
    rows = []
    for t in trained.values():
        metric = headline(t.metrics)
        rows.append(
            [
                t.spec.name,
                t.spec.task,
                metric[0] if metric else "-",
                fmt(metric[1]) if metric else "-",
                t.profile,
                fmt(t.seconds, 1),
                f"{t.record['parameters']:,}" if isinstance(t.record.get("parameters"), int) else "-",
            ]
        )
    report.table(["model", "task", "headline metric", "value", "profile", "train seconds", "parameters"], rows)


# --- the page -------------------------------------------------------------------------------------------


def write_report(root: Path) -> ReportResult:
    """Write ``root/report.md`` and its PNGs in ``root/report/``; an error if no model is trained."""
    trained = read_trained(root)
    if not trained:
        raise UserInputError(f"no trained models under {root}; run 'torchzoo train NAME' first")
    report = Report(root)
    stamp = utc_minute()
    report.add(
        "# torchzoo report",
        "",
        f"{len(trained)} trained model(s) under `{root}`; torchzoo {__version__}, {stamp}. "
        "Regenerate with `torchzoo report`.",
        "",
    )
    reference = _mlp_specs(lambda o: o.get("depth") == REFERENCE_DEPTH)
    by_depth = sorted(
        _mlp_specs(lambda o: o.get("activation") == REFERENCE_ACTIVATION), key=lambda s: s.options["depth"]
    )
    accuracy_section(
        report,
        trained,
        "MNIST MLP: activation functions",
        reference,
        lambda s: str(s.options.get("activation")),
        "mlp_activations",
    )
    accuracy_section(
        report, trained, "MNIST MLP: depth", by_depth, lambda s: f"depth {s.options.get('depth')}", "mlp_depth"
    )
    loss_section(report, trained)
    house_section(report, trained, root)
    moons_section(report, trained, root)
    confusion_section(report, trained, root)
    summary_section(report, trained)

    written = set(report.images)
    for stale in (root / REPORT_DIR).glob("*.png"):
        if stale not in written:
            stale.unlink(missing_ok=True)
    path = root / REPORT_MD
    artifact.write_bytes_atomic(path, "\n".join(report.lines).rstrip("\n").encode() + b"\n")
    return ReportResult(path, report.images, report.skipped)
