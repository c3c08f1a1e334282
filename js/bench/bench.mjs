// Batch-1 latency of the JS client (onnxruntime-node, and onnxruntime-web wasm in headless Chromium)
// beside the Python runtime (torchzoo.serve_cli), measured in one run, for names and mnist-mlp.
// Each runtime times `predict` of one input (preprocessing + run + postprocessing) in rounds of REPEATS
// calls; the runtimes take turns (PASSES times), and the table gives the median and the best round.
//
//   node js/bench/bench.mjs [--artifacts-dir artifacts] [--out benchmarks] [--python .venv/bin/python]
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import * as ort from "onnxruntime-node";
import { loadArtifact } from "../../src/torchzoo/js_client/client.mjs";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const artifacts = resolve(option("--artifacts-dir", join(ROOT, "artifacts")));
const outDir = resolve(option("--out", join(ROOT, "benchmarks")));
const python = option("--python", existsSync(join(ROOT, ".venv/bin/python")) ? join(ROOT, ".venv/bin/python") : "python3");
const [REPEATS, ROUNDS, PASSES] = [50, 10, 3];

const digit = Array.from(gunzipSync(readFileSync(join(ROOT, "../shared/data/MNIST/raw/t10k-images-idx3-ubyte.gz"))).subarray(16, 16 + 784));
const models = { names: "Rossi", "mnist-mlp": digit };

async function nodeRounds() {
  const out = {};
  for (const [name, input] of Object.entries(models)) {
    const model = await loadArtifact(join(artifacts, name), { ort });
    const sample = name === "names" ? input : { data: Uint8Array.from(input), shape: [1, 28, 28] };
    for (let i = 0; i < 20; i++) await model.predict([sample]);
    out[name] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < REPEATS; i++) await model.predict([sample]);
      out[name].push(Number(process.hrtime.bigint() - t0) / 1e6 / REPEATS);
    }
  }
  return out;
}

const PYTHON_BENCH = `
import json, sys, time
import numpy as np
from torchzoo.serve_cli import load
req = json.load(sys.stdin)
out = {}
for name, item in req["models"].items():
    model = load(f"{req['artifacts']}/{name}")
    sample = item if name == "names" else np.array(item, np.uint8).reshape(1, 28, 28)
    for _ in range(20):
        model.predict([sample])
    out[name] = []
    for _ in range(req["rounds"]):
        t0 = time.perf_counter()
        for _ in range(req["repeats"]):
            model.predict([sample])
        out[name].append((time.perf_counter() - t0) * 1000 / req["repeats"])
print(json.dumps({"rounds": out, "onnxruntime": __import__("onnxruntime").__version__}))
`;

function pythonRounds() {
  const request = JSON.stringify({ models, artifacts, rounds: ROUNDS, repeats: REPEATS });
  const done = spawnSync(python, ["-c", PYTHON_BENCH], { input: request, encoding: "utf-8", timeout: 300_000 });
  if (done.status !== 0) throw new Error(`python bench failed: ${done.stderr}`);
  return JSON.parse(done.stdout);
}

async function startServer(site) {
  const server = spawn(python, ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", site], { stdio: ["ignore", "pipe", "pipe"] });
  const port = await new Promise((ok, fail) => {
    server.stdout.on("data", (chunk) => {
      const match = /port (\d+)/.exec(String(chunk));
      if (match) ok(Number(match[1]));
    });
    server.on("exit", () => fail(new Error("http.server exited")));
  });
  return { server, port };
}

function browserRounds(url) {
  const request = JSON.stringify({ url, bench: { models, repeats: REPEATS, rounds: ROUNDS } });
  const done = spawnSync("node", [join(ROOT, "js/test/browser.mjs")], { input: request, encoding: "utf-8", timeout: 600_000 });
  const answer = JSON.parse(done.stdout);
  if (answer.error) throw new Error(`browser bench failed: ${answer.error}`);
  return answer.bench;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const site = mkdtempSync(join(tmpdir(), "torchzoo-bench-"));
for (const name of ["examples", "js", "src"]) symlinkSync(join(ROOT, name), join(site, name));
symlinkSync(artifacts, join(site, "artifacts"));
const { server, port } = await startServer(site);
const rounds = { python: {}, node: {}, browser: {} };
let pythonOrt = null;
try {
  for (let pass = 0; pass < PASSES; pass++) {
    const py = pythonRounds();
    pythonOrt = py.onnxruntime;
    const parts = { python: py.rounds, node: await nodeRounds(), browser: browserRounds(`http://127.0.0.1:${port}/examples/web/index.html?mnist=mnist-mlp`) };
    for (const [runtime, byModel] of Object.entries(parts)) {
      for (const [name, values] of Object.entries(byModel)) (rounds[runtime][name] ??= []).push(...values);
    }
  }
} finally {
  server.kill();
  rmSync(site, { recursive: true, force: true });
}

const version = (pkg) => JSON.parse(readFileSync(join(ROOT, "js/node_modules", pkg, "package.json"), "utf-8")).version;
const chromium = /Chromium [\d.]+/.exec(spawnSync("/usr/bin/chromium", ["--version"], { encoding: "utf-8" }).stdout)?.[0] ?? "Chromium";
const rows = [];
for (const name of Object.keys(models)) {
  const py = median(rounds.python[name]);
  for (const runtime of ["python", "node", "browser"]) {
    const values = rounds[runtime][name];
    rows.push({ model: name, runtime, median_ms: median(values), best_ms: Math.min(...values), vs_python: median(values) / py, rounds: values.length });
  }
}
const labels = {
  python: `Python runtime (torchzoo.serve_cli, onnxruntime ${pythonOrt})`,
  node: `JS client, onnxruntime-node ${version("onnxruntime-node")}`,
  browser: `JS client, onnxruntime-web ${version("onnxruntime-web")} wasm, 1 thread (${chromium})`,
};
const result = {
  measured: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  what: `predict() of one input (preprocessing + run + postprocessing), ${REPEATS} calls per round, ${ROUNDS} rounds per pass, ${PASSES} passes taking turns`,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, loadavg_at_end: loadavg().map((x) => Number(x.toFixed(2))) },
  runtimes: labels,
  rows,
};
const fmt = (x) => x.toFixed(3);
const md = [
  "# JavaScript client: batch-1 latency",
  "",
  `Measured ${result.measured} by \`node js/bench/bench.mjs\` on ${result.machine.cpus} CPU cores (${result.machine.cpu}), shared with other`,
  `work (load average at the end: ${result.machine.loadavg_at_end.join(", ")}), so absolute numbers are noisy; the runtimes take turns within one run.`,
  `Each number: ${result.what}; ms per call.`,
  "",
  "| model | runtime | median ms | best round ms | time / Python's |",
  "|---|---|---:|---:|---:|",
  ...rows.map((r) => `| ${r.model} | ${labels[r.runtime]} | ${fmt(r.median_ms)} | ${fmt(r.best_ms)} | ${r.vs_python.toFixed(2)}x |`),
  "",
];
writeFileSync(join(outDir, "js_results.json"), JSON.stringify(result, null, 2) + "\n");
writeFileSync(join(outDir, "js_results.md"), md.join("\n"));
process.stdout.write(md.join("\n"));
