// A command-line Node app on the torchzoo JS client; prints JSON like `torchzoo predict --json`.
//
//   node examples/node/predict.mjs names Rossi Nakamura
//   node examples/node/predict.mjs mnist-mlp digit.png        (PNG at the model's size: 28x28 for MNIST)
//   node examples/node/predict.mjs wine 13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050
//   options: --artifacts-dir DIR (default ./artifacts), --top-k K, --threshold T
//
// Needs `npm ci --ignore-scripts` in js/ (onnxruntime-node and pngjs are resolved from js/node_modules).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { loadArtifact, UserInputError } from "../../src/torchzoo/js_client/client.mjs";

const require = createRequire(new URL("../../js/package.json", import.meta.url));
const ort = require("onnxruntime-node");
const { PNG } = require("pngjs");

function parseArgs(argv) {
  const options = { artifactsDir: "artifacts", topK: 3, threshold: 0.5, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--artifacts-dir") options.artifactsDir = argv[++i];
    else if (arg === "--top-k") options.topK = Number(argv[++i]);
    else if (arg === "--threshold") options.threshold = Number(argv[++i]);
    else options.positional.push(arg);
  }
  if (options.positional.length < 2) throw new UserInputError("usage: predict.mjs MODEL INPUT... [--artifacts-dir DIR]");
  if (!(Number.isInteger(options.topK) && options.topK >= 1)) throw new UserInputError("--top-k must be an integer >= 1");
  if (!(options.threshold >= 0 && options.threshold <= 1)) throw new UserInputError("--threshold must be in [0, 1]");
  return options;
}

function readInput(arg, kind) {
  if (kind === "image") {
    if (!arg.toLowerCase().endsWith(".png")) throw new UserInputError(`${arg}: this example reads PNG files`);
    let png;
    try {
      png = PNG.sync.read(readFileSync(arg));
    } catch (err) {
      throw new UserInputError(err.code === "ENOENT" ? `no such image file: ${arg}` : `${arg} is not a readable image (${err.name})`);
    }
    return { data: png.data, width: png.width, height: png.height };
  }
  if (kind === "features" && /\.(csv|txt)$/i.test(arg)) {
    try {
      return { csv: readFileSync(arg, "utf-8"), name: arg };
    } catch (err) {
      throw new UserInputError(`${arg} is not a readable CSV file (${err.code ?? err.name})`);
    }
  }
  return arg;
}

try {
  const options = parseArgs(process.argv.slice(2));
  const [name, ...args] = options.positional;
  const model = await loadArtifact(join(options.artifactsDir, name), { ort });
  const kind = model.manifest.preprocessing.kind;
  const results = await model.predict(args.map((a) => readInput(a, kind)), options);
  // PNG inputs are labelled by their file name, as the Python runtime labels image files
  if (kind === "image") results.forEach((r, i) => (r.input = args[i]));
  process.stdout.write(JSON.stringify({ model: model.name, provider: "onnxruntime-node cpu", results }, null, 2) + "\n");
} catch (err) {
  const code = err instanceof UserInputError ? 2 : 1;
  process.stdout.write(JSON.stringify({ error: err.message, exit_code: code }) + "\n");
  process.exit(code);
}
