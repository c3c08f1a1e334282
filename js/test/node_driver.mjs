// Test driver for tests/test_js_client.py: reads {artifact, cases} as JSON on stdin, runs each case through
// the JS client in onnxruntime-node, and prints one JSON answer per case: {results} or {error: {name, message}}.
// Encoded inputs: strings, numbers and arrays as they are; {uint8_b64|float32_b64, shape} for tensors;
// {csv, name} for a CSV file's text.
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { loadArtifact } from "../../src/torchzoo/js_client/client.mjs";

function decode(item) {
  if (item && typeof item === "object" && !Array.isArray(item)) {
    if ("uint8_b64" in item) return { data: new Uint8Array(Buffer.from(item.uint8_b64, "base64")), shape: item.shape };
    if ("float32_b64" in item) {
      const bytes = Buffer.from(item.float32_b64, "base64");
      return { data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4).slice(), shape: item.shape };
    }
  }
  return item;
}

const request = JSON.parse(readFileSync(0, "utf-8"));
const answers = [];
try {
  const model = await loadArtifact(request.artifact, { ort });
  for (const c of request.cases) {
    try {
      answers.push({ results: await model.predict(c.inputs.map(decode), { topK: c.topK ?? 3, threshold: c.threshold ?? 0.5 }) });
    } catch (err) {
      answers.push({ error: { name: err.name, message: err.message } });
    }
  }
  process.stdout.write(JSON.stringify({ answers }));
} catch (err) {
  process.stdout.write(JSON.stringify({ load_error: { name: err.name, message: err.message } }));
}
