"""``torchzoo bench``: inference speed of every exported model in every runtime, side by side in one run.

For each model: latency at batch 1 (median, p99) and throughput at a large batch for torch eager,
TorchScript, onnxruntime CPU (and CUDA when onnxruntime has it), FLOPs per sample and achieved GFLOP/s,
artifact sizes, and the resident memory each runtime adds (:mod:`.measure`); beside them torch.compile,
OpenVINO and the int8/fp16 variants (:mod:`.peers`), with onnxruntime's ratio to the fastest peer.
Also: onnxruntime session settings tried on a few models (:mod:`.sessions`), the cold start of
``torchzoo predict`` vs the same prediction through torch (:mod:`.cold_start`), and the names model's
training time against the tutorial's one-name loop (:mod:`.training`). Results go to
``benchmarks/results.json`` and ``benchmarks/results.md`` (:mod:`.render`). Benchmarks are never tests.
"""

from torchzoo.bench.cold_start import cold_start
from torchzoo.bench.measure import BenchConfig, bench_model, calls_per_round, environment
from torchzoo.bench.render import merge_results, read_results, render_markdown, write_results
from torchzoo.bench.sessions import SESSION_TUNED, SESSION_VARIANTS, session_tuning
from torchzoo.bench.training import names_training

__all__ = [
    "SESSION_TUNED",
    "SESSION_VARIANTS",
    "BenchConfig",
    "bench_model",
    "calls_per_round",
    "cold_start",
    "environment",
    "merge_results",
    "names_training",
    "read_results",
    "render_markdown",
    "session_tuning",
    "write_results",
]
