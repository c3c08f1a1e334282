// The demo page: a names box with top-3 bars and a digit pad answered by every MNIST model found.
// Query string: ?artifacts=BASE_URL (default ../../artifacts/), ?ort=URL of onnxruntime-web's module,
// ?mnist=model,model (the digit models to try). window.torchzooDemo exposes the pipeline to tests.
import { loadArtifact } from "../../src/torchzoo/js_client/client.mjs";
import { drawingToMnist } from "./mnist_canvas.mjs";

const query = new URLSearchParams(location.search);
const base = new URL(query.get("artifacts") ?? "../../artifacts/", location.href);
if (!base.pathname.endsWith("/")) base.pathname += "/";
const ortUrl = query.get("ort") ?? "../../js/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
const MNIST = (query.get("mnist") ?? "mnist-mlp,mnist-ffnn,mnist-lstm,mnist-gru,mnist-rnn,mnist-binary").split(",");
const $ = (id) => document.getElementById(id);
$("base").textContent = base.href;

const demo = { names: null, digits: [], lastPixels: null, lastDigitResults: null, lastNameResults: null };
window.torchzooDemo = demo;

function bars(element, top) {
  element.replaceChildren(
    ...top.map(({ label, probability }) => {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
      row.querySelector(".label").textContent = label;
      row.querySelector(".fill").style.width = `${(100 * probability).toFixed(1)}%`;
      row.querySelector(".fill").style.display = "block";
      row.querySelector(".value").textContent = probability.toFixed(3);
      return row;
    }),
  );
}

async function load(name, ort) {
  try {
    return await loadArtifact(new URL(`${name}/`, base).href, { ort, sessionOptions: { executionProviders: ["wasm"] } });
  } catch (err) {
    console.warn(`${name}: ${err.message}`);
    return null;
  }
}

async function answerName() {
  const text = $("name").value;
  if (!demo.names || text === "") {
    $("name-bars").replaceChildren();
    $("name-error").textContent = "";
    return;
  }
  try {
    const [result] = await demo.names.predict([text], { topK: 3 });
    if ($("name").value !== text) return; // a newer keystroke answers
    demo.lastNameResults = result;
    $("name-error").textContent = "";
    bars($("name-bars"), result.top);
    $("name-bars").dataset.top1 = result.label;
  } catch (err) {
    $("name-error").textContent = err.message;
    $("name-bars").replaceChildren();
  }
}

// --- the digit pad ----------------------------------------------------------------------------------
const pad = $("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  $("preview").getContext("2d").clearRect(0, 0, 28, 28);
  $("digit-table").tBodies[0].replaceChildren();
  $("digit-bars").replaceChildren();
}
clearPad();
let drawing = false;
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  ctx.beginPath();
  ctx.moveTo(e.offsetX, e.offsetY);
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 20;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineTo(e.offsetX, e.offsetY);
  ctx.stroke();
});
pad.addEventListener("pointerup", () => {
  drawing = false;
  answerDigit();
});
$("clear").addEventListener("click", clearPad);

/** Paint 28x28 uint8 pixels onto the pad, 10x10 screen pixels each (how a test injects a known digit). */
demo.drawPixels = (pixels) => {
  const cell = pad.width / 28;
  for (let i = 0; i < 784; i++) {
    ctx.fillStyle = `rgb(${pixels[i]}, ${pixels[i]}, ${pixels[i]})`;
    ctx.fillRect((i % 28) * cell, Math.floor(i / 28) * cell, cell, cell);
  }
  return answerDigit();
};

async function answerDigit() {
  const pixels = drawingToMnist(ctx.getImageData(0, 0, pad.width, pad.height));
  if (!pixels) return null;
  demo.lastPixels = Array.from(pixels);
  const preview = new ImageData(28, 28);
  pixels.forEach((v, i) => preview.data.set([v, v, v, 255], 4 * i));
  $("preview").getContext("2d").putImageData(preview, 0, 0);
  const answers = {};
  const rows = [];
  for (const model of demo.digits) {
    const [result] = await model.predict([{ data: pixels, shape: [1, 28, 28] }], { topK: 10 });
    answers[model.name] = result;
    const row = document.createElement("tr");
    // binary models report p(positive); the table shows the probability of the answer given
    const p = model.task === "binary" ? (result.label === model.labels[1] ? result.probability : 1 - result.probability) : result.top[0].probability;
    const shown = [result.label, p];
    for (const text of [model.name, shown[0], shown[1].toFixed(3)]) row.insertCell().textContent = text;
    rows.push(row);
  }
  $("digit-table").tBodies[0].replaceChildren(...rows);
  const first = Object.values(answers).find((r) => r.top);
  if (first) bars($("digit-bars"), first.top.slice(0, 3));
  demo.lastDigitResults = answers;
  return answers;
}

demo.ready = (async () => {
  try {
    const ort = await import(ortUrl);
    ort.env.wasm.numThreads = 1;
    demo.ort = ort;
    demo.names = await load("names", ort);
    demo.digits = (await Promise.all(MNIST.map((name) => load(name, ort)))).filter(Boolean);
    const found = [demo.names ? "names" : null, ...demo.digits.map((m) => m.name)].filter(Boolean);
    $("status").textContent = found.length ? `Loaded: ${found.join(", ")}.` : "No artifacts found there.";
    $("name").addEventListener("input", answerName);
    answerName();
    return found;
  } catch (err) {
    $("status").textContent = `Could not start: ${err.message}`;
    throw err;
  }
})();
