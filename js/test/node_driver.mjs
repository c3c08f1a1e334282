// Test driver for tests/test_js_client.py: reads {artifact, cases} as JSON on stdin, runs each case through
// the JS client in onnxruntime-node, and prints one JSON answer per case: {results}, {outputs} or
// {error: {name, message}}. A case calls model.predict(inputs), or model.runTensors(inputs) with
// "method": "runTensors" (every output by name, {data as numbers, dims}). Encoded inputs: strings, numbers and
// arrays as they are; {<dtype>_b64, shape} for tensors (uint8, float32, float64, int32, int64, bool: 0/1
// bytes); {csv, name} for a CSV file's text; an object of those by input name for a tensors model.
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { loadArtifact } from "../../src/torchzoo/js_client/client.mjs";

const TYPED = {
  uint8: Uint8Array, bool: Uint8Array, float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array,
};

function decode(item) {
  if (item && typeof item === "object" && !Array.isArray(item)) {
    for (const [dtype, Typed] of Object.entries(TYPED)) {
      const key = `${dtype}_b64`;
      if (key in item) {
        const bytes = Buffer.from(item[key], "base64");
        const data = new Typed(bytes.buffer, bytes.byteOffset, bytes.length / Typed.BYTES_PER_ELEMENT).slice();
        return { data, shape: item.shape };
      }
    }
    if (!("csv" in item) && !("shape" in item)) return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, decode(v)]));
  }
  return item;
}

function plain(outputs) {
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { data: Array.from(v.data, Number), dims: v.dims }]));
}

const request = JSON.parse(readFileSync(0, "utf-8"));
const answers = [];
try {
  const model = await loadArtifact(request.artifact, { ort });
  for (const c of request.cases) {
    try {
      const inputs = Array.isArray(c.inputs) ? c.inputs.map(decode) : decode(c.inputs);
      if (c.method === "runTensors") answers.push({ outputs: plain(await model.runTensors(inputs)) });
      else answers.push({ results: await model.predict(inputs, { topK: c.topK ?? 3, threshold: c.threshold ?? 0.5 }) });
    } catch (err) {
      answers.push({ error: { name: err.name, message: err.message } });
    }
  }
  process.stdout.write(JSON.stringify({ answers }));
} catch (err) {
  process.stdout.write(JSON.stringify({ load_error: { name: err.name, message: err.message } }));
}
