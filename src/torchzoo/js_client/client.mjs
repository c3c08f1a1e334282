// torchzoo JavaScript client: run a torchzoo artifact (manifest.json + model.onnx) with onnxruntime-node
// or onnxruntime-web, with the Python runtime's preprocessing, postprocessing and refusals
// (torchzoo.serve_cli). One file, no dependencies: the onnxruntime module is passed in.
//
//   import * as ort from "onnxruntime-node";            // or "onnxruntime-web"
//   import { loadArtifact } from "./client.mjs";
//   const model = await loadArtifact("artifacts/names", { ort });  // Node: a directory; browser: a base URL
//   await model.predict(["Rossi"], { topK: 3 });         // [{input: "Rossi", label: "Italian", top: [...]}]
//
// Inputs by the manifest's preprocessing kind:
// - names_one_hot: strings (folded to ASCII; refused if a character cannot be folded).
// - image: pixels already at the model's size: a Uint8Array / Uint8ClampedArray of C*H*W channel-first
//   pixels (one image), an ImageData-like {data (RGBA), width, height} (one image), or a tensor-like
//   {data, shape} batch: uint8 [n, C, H, W] / [n, H, W] pixels, or float32 already in the model's input
//   shape [n, ...] (used as is).
// - features: numbers (one-feature models), arrays of numbers (rows; a flat array of k*n values is n
//   rows), comma-separated strings ("13.2,1.78,..."), or {csv: text, name} for a CSV file's text.
// - tensors (a user's own model, torchzoo.package: raw tensors, nothing preprocessed): one object by input
//   name (or an array of tensors in input order), axis 0 of each the batch. A tensor is {data, shape} with data
//   the typed array of the input's dtype: Float32Array (float32), Float64Array (float64), BigInt64Array
//   (int64), Int32Array (int32), Uint8Array of 0/1 (bool: JavaScript has no boolean typed array); a typed array
//   that converts without loss is taken too (Int32Array for int64, Float32Array for float64, Uint8Array for
//   float32...). Or nested arrays: numbers (integers for int32/int64; BigInts too for int64) or booleans (bool).
//     await model.predict({ ids: { data: BigInt64Array.from([3n, 7n]), shape: [1, 2] }, mask: [[1, 1]] });
//   predict scores output 0 (task "tensor": each sample's output 0 as nested arrays, {value}); runTensors
//   returns every output by name as {data, dims}.

/** The schema versions of manifest.json this client reads (torchzoo.core.artifact.SCHEMA_VERSION). */
export const SCHEMA_VERSIONS = [1];
export const MANIFEST = "manifest.json";
export const ONNX = "model.onnx";
// The runtime's input limits (torchzoo.core.limits)
export const LIMITS = {
  MAX_RAW_NAME_CHARS: 1024, MAX_INPUTS: 10_000, MAX_BATCH: 100_000, MAX_CELL_CHARS: 100, MAX_CSV_ROWS: 100_000,
};
const OUTPUT_SLACK = 1e-6; // float rounding allowed above a probability of 1 (serve_cli.output_check)
const REQUIRED = ["schema_version", "model", "task", "labels", "inputs", "outputs", "preprocessing", "files"];

/** An expected failure with a message meant for a person (torchzoo.core.errors.TorchzooError). */
export class TorchzooError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
    this.exitCode = 1;
  }
}
/** Bad input: the message is the one the Python runtime raises for the same input. */
export class UserInputError extends TorchzooError {
  constructor(message) {
    super(message);
    this.exitCode = 2;
  }
}
/** A missing, damaged or unknown artifact. */
export class ArtifactError extends UserInputError {}
/** A graph output that is not an answer (wrong shape, NaN, probabilities outside [0, 1]). */
export class OutputError extends ArtifactError {}

// --- Python's str semantics, so messages match the Python runtime's character for character ----------

const PY_SPACE = /[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const NOT_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

/** Python's ``str.strip()``. */
export function pyStrip(text) {
  const chars = Array.from(text);
  let start = 0;
  let end = chars.length;
  while (start < end && PY_SPACE.test(chars[start])) start++;
  while (end > start && PY_SPACE.test(chars[end - 1])) end--;
  return chars.slice(start, end).join("");
}

/** Python's ``f"{n:,}"`` of an integer. */
function thousands(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

const HIDDEN = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]$/u;

/** torchzoo.core.text_codec.printable: hidden characters escaped as Python's unicode_escape, cut to limit. */
export function printable(text, limit = 200) {
  const chars = Array.from(text);
  const escape = (ch) => {
    const code = ch.codePointAt(0);
    if (ch === "\t") return "\\t";
    if (ch === "\n") return "\\n";
    if (ch === "\r") return "\\r";
    if (code <= 0xff) return "\\x" + code.toString(16).padStart(2, "0");
    if (code <= 0xffff) return "\\u" + code.toString(16).padStart(4, "0");
    return "\\U" + code.toString(16).padStart(8, "0");
  };
  const shown = chars.slice(0, limit).map((ch) => (HIDDEN.test(ch) ? escape(ch) : ch)).join("");
  return shown + (chars.length > limit ? "..." : "");
}

/** Python's ``text[:n]`` (code points). */
function pySlice(text, n) {
  return Array.from(text).slice(0, n).join("");
}

/** Python's ``repr(text)`` for a str. */
export function pyRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (code < 0x20 || code === 0x7f || (ch !== " " && NOT_PRINTABLE.test(ch))) {
      if (code <= 0xff) out += "\\x" + code.toString(16).padStart(2, "0");
      else if (code <= 0xffff) out += "\\u" + code.toString(16).padStart(4, "0");
      else out += "\\U" + code.toString(16).padStart(8, "0");
    } else out += ch;
  }
  return out + quote;
}

/** Python's ``repr(x)`` of a float (shortest round-trip digits, Python's exponent format). */
export function pyFloatRepr(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const [mantissa, exp] = x.toExponential().split("e");
  const e = Number(exp);
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace(/[-.]/g, "");
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
  const whole = digits.slice(0, e + 1).padEnd(e + 1, "0");
  return `${sign}${whole}.${digits.slice(e + 1) || "0"}`;
}

/** Python's ``str(x)`` of a JSON value (numbers taken as floats, as JSON gives them to Python). */
function pyStr(value) {
  if (value === null || value === undefined) return "None";
  if (typeof value === "number") return pyFloatRepr(value);
  if (Array.isArray(value)) return `[${value.map((v) => (typeof v === "string" ? pyRepr(v) : pyStr(v))).join(", ")}]`;
  return String(value);
}

/** Python's repr of a JSON value in an f-string (numbers, strings, null). */
function pyValue(value) {
  if (typeof value === "string") return pyRepr(value);
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  return String(value);
}

const NUMBER = /^[+-]?(?:(?:\d(?:_?\d)*)(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?$/;
const SPECIAL = /^[+-]?(?:inf|infinity|nan)$/i;

/** Python's ``float(text)``: null where Python raises ValueError. */
export function pyFloat(text) {
  const stripped = pyStrip(text);
  if (SPECIAL.test(stripped)) return stripped.toLowerCase().includes("nan") ? NaN : stripped.startsWith("-") ? -Infinity : Infinity;
  if (!NUMBER.test(stripped)) return null;
  return Number(stripped.replaceAll("_", ""));
}

// --- preprocessing: torchzoo.core.text_codec / image_codec / feature_codec, serve_cli.preprocess ----

/** The tutorial's unicodeToAscii, strict: NFKD, drop combining marks, refuse what is not in the alphabet. */
export function foldToAscii(name, alphabet) {
  const length = Array.from(name).length;
  if (length > LIMITS.MAX_RAW_NAME_CHARS) {
    throw new UserInputError(`a name of ${thousands(length)} characters; at most ${thousands(LIMITS.MAX_RAW_NAME_CHARS)} are read`);
  }
  const kept = [];
  const unknown = [];
  for (const ch of pyStrip(name).normalize("NFKD")) {
    if (/^\p{Mn}$/u.test(ch)) continue;
    (alphabet.includes(ch) ? kept : unknown).push(ch);
  }
  if (unknown.length) {
    const shown = pySlice([...new Set(unknown)].join(""), 10);
    throw new UserInputError(
      `name ${pyRepr(pySlice(name, 40))} has characters the model does not know: ${pyRepr(shown)} ` +
        `(it knows ASCII letters and " .,;'", accents are folded away)`,
    );
  }
  return kept.join("");
}

/** One-hot float32 [batch, longest, alphabet] and its dims; zero rows pad. */
export function encodeNames(names, alphabet, maxLength) {
  if (names.length === 0) throw new UserInputError("no names given");
  const folded = names.map((n) => foldToAscii(n, alphabet));
  names.forEach((raw, i) => {
    if (!/[A-Za-z]/.test(folded[i])) {
      throw new UserInputError(`name ${pyRepr(pySlice(raw, 40))} has no letters; give a surname such as 'Rossi'`);
    }
    if (folded[i].length > maxLength) {
      throw new UserInputError(`name ${pyRepr(pySlice(raw, 40))}... is ${folded[i].length} characters; at most ${maxLength}`);
    }
  });
  const longest = Math.max(...folded.map((n) => n.length));
  const width = alphabet.length;
  const data = new Float32Array(names.length * longest * width);
  folded.forEach((name, b) => {
    for (let t = 0; t < name.length; t++) data[(b * longest + t) * width + alphabet.indexOf(name[t])] = 1;
  });
  return { data, dims: [names.length, longest, width] };
}

function namesOneHot(inputs, params) {
  if (!inputs.every((x) => typeof x === "string")) throw new UserInputError("this model takes names (strings)");
  const { data, dims } = encodeNames(inputs, params.alphabet, params.max_length);
  return { data, dims, sources: [...inputs] };
}

function sampleShape(specs) {
  return specs[0].shape.slice(1).map(Number);
}

function sources(count) {
  return count === 1 ? ["array"] : Array.from({ length: count }, (_, i) => `array[${i}]`);
}

/** uint8 pixels, n images of C*H*W channel-first -> float32 (pixels / scale - mean) / std, as numpy float32 does. */
export function normalizePixels(pixels, params) {
  const channels = params.mode === "L" ? 1 : 3;
  const [height, width] = params.size;
  const plane = height * width;
  const scale = Math.fround(params.scale);
  const mean = params.mean.map(Math.fround);
  const std = params.std.map(Math.fround);
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const c = Math.floor(i / plane) % channels;
    out[i] = Math.fround(Math.fround(Math.fround(pixels[i] / scale) - mean[c]) / std[c]);
  }
  return out;
}

/** ImageData (RGBA) -> uint8 channel-first pixels in the manifest's mode, as Pillow converts them. */
export function imageDataToPixels(image, params) {
  const [height, width] = params.size;
  if (image.width !== width || image.height !== height) {
    throw new UserInputError(`image of ${image.width}x${image.height}; this client takes images at the model's size ${width}x${height} (resize first)`);
  }
  const rgba = image.data;
  const plane = width * height;
  if (params.mode === "L") {
    const out = new Uint8Array(plane);
    for (let i = 0; i < plane; i++) {
      const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
      out[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; // Pillow's ITU-R 601-2 luma
    }
    return out;
  }
  const out = new Uint8Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    const alpha = rgba[4 * i + 3] / 255; // composed on white, as the Python runtime does
    for (let c = 0; c < 3; c++) out[c * plane + i] = Math.round(rgba[4 * i + c] * alpha + 255 * (1 - alpha));
  }
  return out;
}

function isPixels(x) {
  return x instanceof Uint8Array || x instanceof Uint8ClampedArray;
}

// typed arrays by the numpy dtype names the Python runtime's messages use
const NUMPY_NAMES = {
  Int8Array: "int8", Int16Array: "int16", Uint16Array: "uint16", Int32Array: "int32", Uint32Array: "uint32",
  BigInt64Array: "int64", BigUint64Array: "uint64",
};

function imageBatch(item, params, shape) {
  const channels = params.mode === "L" ? 1 : 3;
  const [height, width] = params.size;
  const perImage = channels * height * width;
  let data = item;
  let dims = null;
  if (item && typeof item === "object" && "width" in item && "height" in item && "data" in item) {
    data = imageDataToPixels(item, params);
    dims = [1, channels, height, width];
  } else if (item && typeof item === "object" && !ArrayBuffer.isView(item) && "data" in item && "shape" in item) {
    data = item.data;
    dims = item.shape.map(Number);
  } else if (ArrayBuffer.isView(item)) {
    dims = [1, item.length];
  } else {
    throw new UserInputError(
      "this model takes pixel arrays (Uint8Array of C*H*W, ImageData) or {data, shape} tensors; decode image files first",
    );
  }
  if (isPixels(data)) {
    if (dims.length < 2 || dims.slice(1).reduce((a, b) => a * b, 1) !== perImage || data.length % perImage !== 0) {
      throw new UserInputError(
        `array: uint8 batch of shape [${dims.join(", ")}]; expected [n, ${channels}, ${height}, ${width}]` +
          (channels === 1 ? ` or [n, ${height}, ${width}]` : ""),
      );
    }
    return { data: normalizePixels(data, params), count: data.length / perImage };
  }
  if (data instanceof Float32Array || data instanceof Float64Array) {
    if (dims.length - 1 !== shape.length || dims.slice(1).some((d, i) => d !== shape[i])) {
      throw new UserInputError(`array: float batch of shape [${dims.join(", ")}]; expected [n, ${shape.join(", ")}]`);
    }
    if (!data.every(Number.isFinite)) throw new UserInputError("array: the batch holds NaN or infinite values");
    return { data: Float32Array.from(data), count: dims[0] };
  }
  const kind = NUMPY_NAMES[data?.constructor?.name] ?? data?.constructor?.name ?? typeof data;
  throw new UserInputError(`array: arrays must be uint8 pixels or float32 model input, not ${kind}`);
}

function image(inputs, params, specs) {
  const shape = sampleShape(specs);
  const parts = [];
  const names = [];
  for (const item of inputs) {
    const batch = imageBatch(item, params, shape);
    parts.push(batch.data);
    names.push(...sources(batch.count));
  }
  if (names.length === 0) throw new UserInputError("no images given");
  const data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    data.set(part, offset);
    offset += part.length;
  }
  return { data, dims: [names.length, ...shape], sources: names };
}

function parseNumber(text, where) {
  const length = Array.from(text).length;
  if (length > LIMITS.MAX_CELL_CHARS) throw new UserInputError(`${where}: a value of ${thousands(length)} characters is not a number`);
  const value = pyFloat(text);
  if (value === null) throw new UserInputError(`${where}: ${pyRepr(pySlice(pyStrip(text), 30))} is not a number`);
  if (!Number.isFinite(value)) throw new UserInputError(`${where}: ${pyRepr(pySlice(pyStrip(text), 30))} is not a finite number`);
  return value;
}

/** The rows of a CSV file's text (a first row with no number in it is a header), refused as the Python
 * runtime refuses a CSV file; ``where`` names the file in messages. */
export function csvRows(text, nFeatures, where = "input.csv") {
  const shown = printable(where);
  const raw = [];
  for (const line of text.replace(/^\ufeff/, "").split(/\r\n|\n|\r/)) {
    const row = line === "" ? [] : line.split(",").map((cell) => cell.replace(/^"(.*)"$/s, "$1"));
    if (row.some((cell) => pyStrip(cell) !== "")) raw.push(row);
    if (raw.length > LIMITS.MAX_CSV_ROWS + 1) {
      throw new UserInputError(`${shown} has more than ${thousands(LIMITS.MAX_CSV_ROWS)} rows; split it`);
    }
  }
  const isNumber = (cell) => pyFloat(pySlice(cell, LIMITS.MAX_CELL_CHARS)) !== null;
  if (raw.length && !raw[0].some(isNumber)) raw.shift(); // a header row
  if (!raw.length) throw new UserInputError(`${shown} has no data rows`);
  return raw.map((row, i) => {
    if (row.length !== nFeatures) {
      throw new UserInputError(`${shown} row ${i + 1}: ${row.length} columns; the model takes ${nFeatures}`);
    }
    return row.map((cell) => parseNumber(cell, `${shown} row ${i + 1}`));
  });
}

function flatNumbers(item) {
  const flat = ArrayBuffer.isView(item) ? Array.from(item) : [item].flat(Infinity);
  return flat.every((v) => typeof v === "number") ? flat : null;
}

function features(inputs, params) {
  const n = Number(params.n_features);
  const names = (params.feature_names ?? []).join(", ");
  const rows = [];
  const labels = [];
  for (const item of inputs) {
    const before = rows.length;
    let label = "array";
    const values = typeof item === "number" || Array.isArray(item) || ArrayBuffer.isView(item) ? flatNumbers(item) : null;
    if (values) {
      if (values.length % n !== 0) {
        throw new UserInputError(`${values.length} values given; the model takes ${n} per sample (${names})`);
      }
      if (!values.every(Number.isFinite)) throw new UserInputError("the input holds NaN or infinite values");
      for (let i = 0; i < values.length; i += n) rows.push(values.slice(i, i + n));
      label = ArrayBuffer.isView(item) ? "array" : pyStr(item);
    } else if (item && typeof item === "object" && typeof item.csv === "string") {
      label = item.name ?? "input.csv";
      rows.push(...csvRows(item.csv, n, label));
    } else if (typeof item === "string") {
      const cells = item.replaceAll(";", ",").split(",");
      if (cells.length !== n) {
        throw new UserInputError(`${pyRepr(pySlice(item, 40))} has ${cells.length} values; the model takes ${n} (${names})`);
      }
      rows.push(cells.map((c) => parseNumber(c, "input")));
      label = item;
    } else {
      throw new UserInputError(`this model takes numbers (${names}), comma-separated rows or a CSV file`);
    }
    const count = rows.length - before;
    labels.push(...(count === 1 ? [label] : Array.from({ length: count }, (_, i) => `${label}[${i}]`)));
  }
  if (!rows.length) throw new UserInputError("no inputs given");
  const Out = params.dtype === "float64" ? Float64Array : Float32Array;
  const data = new Out(rows.length * n);
  rows.forEach((row, r) =>
    row.forEach((v, c) => {
      data[r * n + c] = params.mean == null ? v : (v - params.mean[c]) / params.std[c];
    }),
  );
  return { data, dims: [rows.length, n], sources: labels };
}

// --- raw tensors: serve_cli.tensor_inputs -----------------------------------------------------------

/** The typed array of each manifest dtype (bool: Uint8Array of 0/1). */
export const TYPED_ARRAYS = {
  float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array, bool: Uint8Array,
};
// typed arrays each dtype takes without loss (numpy's safe casts; bool only from 0/1 bytes)
const SAFE = {
  float32: ["Float32Array", "Int8Array", "Int16Array", "Uint8Array", "Uint8ClampedArray", "Uint16Array"],
  float64: ["Float64Array", "Float32Array", "Int8Array", "Int16Array", "Int32Array", "Uint8Array", "Uint8ClampedArray", "Uint16Array", "Uint32Array"],
  int32: ["Int32Array", "Int8Array", "Int16Array", "Uint8Array", "Uint8ClampedArray", "Uint16Array"],
  int64: ["BigInt64Array", "Int8Array", "Int16Array", "Int32Array", "Uint8Array", "Uint8ClampedArray", "Uint16Array", "Uint32Array"],
  bool: ["Uint8Array"],
};
const INT_RANGE = { int32: [-(2 ** 31), 2 ** 31 - 1], int64: [-(2n ** 63n), 2n ** 63n - 1n] };

/** Python's repr of a manifest shape, e.g. ['batch', 'seq', 8]. */
function shapeRepr(shape) {
  return `[${shape.map((d) => (typeof d === "string" ? pyRepr(d) : String(d))).join(", ")}]`;
}

/** Nested arrays -> {flat values, shape}; null when ragged. */
function unnest(value) {
  const shape = [];
  for (let level = value; Array.isArray(level); level = level[0]) shape.push(level.length);
  const flat = value.flat(Infinity);
  const count = shape.reduce((a, b) => a * b, 1);
  return flat.length === count && flat.every((v) => !Array.isArray(v)) ? { flat, shape } : null;
}

/** Nested arrays of plain values as the input's typed array, refused as tensor_inputs.as_array refuses them. */
function fromNested(value, spec, head) {
  const nested = unnest(value);
  if (nested === null) throw new UserInputError(`${head}: values of mixed types or lengths; the model takes ${spec.dtype} values`);
  const { flat, shape } = nested;
  const kinds = new Set(flat.map((v) => (typeof v === "boolean" ? "booleans" : typeof v === "bigint" || Number.isInteger(v) ? "integers" : typeof v === "number" ? "floats" : "other")));
  const allowed = { bool: ["booleans"], int32: ["integers"], int64: ["integers"] }[spec.dtype] ?? ["integers", "floats"];
  const bad = [...kinds].find((k) => !allowed.includes(k));
  if (bad) {
    const mixed = kinds.has("other") || (kinds.has("booleans") && kinds.size > 1);
    const what = mixed ? "values of mixed types or lengths" : kinds.has("floats") ? "floats" : bad; // numpy's upcast
    throw new UserInputError(`${head}: ${what}; the model takes ${spec.dtype} values`);
  }
  if (spec.dtype in INT_RANGE) {
    const [low, high] = INT_RANGE[spec.dtype];
    const outside = flat.some((v) => (typeof v === "bigint" ? v < BigInt(low) || v > BigInt(high) : v < low || v > high));
    if (outside) throw new UserInputError(`${head}: values outside ${spec.dtype}'s range`);
    if (flat.some((v) => typeof v === "number" && !Number.isSafeInteger(v))) {
      throw new UserInputError(`${head}: integers past 2**53 are not exact as JavaScript numbers; give BigInts`);
    }
  }
  const Typed = TYPED_ARRAYS[spec.dtype];
  const data = spec.dtype === "int64" ? BigInt64Array.from(flat, (v) => BigInt(v)) : Typed.from(flat, Number);
  return { data, shape };
}

/** One input tensor ({data, shape} or nested arrays) as the model takes it: dtype, rank, fixed sizes, finite. */
export function tensorInput(value, spec) {
  const head = `input ${pyRepr(spec.name)}`;
  let data;
  let shape;
  if (Array.isArray(value)) {
    ({ data, shape } = fromNested(value, spec, head));
  } else if (value && typeof value === "object" && ArrayBuffer.isView(value.data) && Array.isArray(value.shape)) {
    const given = value.data.constructor.name;
    if (!SAFE[spec.dtype].includes(given)) {
      throw new UserInputError(`${head}: a ${given}; the model takes ${spec.dtype}: a ${TYPED_ARRAYS[spec.dtype].name}`);
    }
    shape = value.shape.map(Number);
    const count = shape.reduce((a, b) => a * b, 1);
    if (shape.some((d) => !Number.isInteger(d)) || value.data.length !== count) {
      throw new UserInputError(`${head}: ${value.data.length} values for the shape [${value.shape.join(", ")}]`);
    }
    const Typed = TYPED_ARRAYS[spec.dtype];
    data = value.data instanceof Typed ? value.data : spec.dtype === "int64" ? BigInt64Array.from(value.data, (v) => BigInt(v)) : Typed.from(value.data);
    if (spec.dtype === "bool" && !data.every((v) => v === 0 || v === 1)) {
      throw new UserInputError(`${head}: a bool input takes a Uint8Array of 0 and 1 (or nested booleans)`);
    }
  } else {
    throw new UserInputError(`${head}: {data, shape} with data a ${TYPED_ARRAYS[spec.dtype].name}, or nested arrays`);
  }
  if (shape.length !== spec.shape.length || shape.some((n, i) => n < 1 || (typeof spec.shape[i] === "number" && spec.shape[i] !== n))) {
    throw new UserInputError(`${head}: shape [${shape.join(", ")}]; the model takes ${spec.dtype} ${shapeRepr(spec.shape)}`);
  }
  if ((spec.dtype === "float32" || spec.dtype === "float64") && !data.every(Number.isFinite)) {
    throw new UserInputError(`${head} holds NaN or infinite values (or values past ${spec.dtype}'s range)`);
  }
  return { data, dims: shape };
}

/** Each dynamic dim name (the batch dim among them) has one size across the inputs; returns the batch size. */
export function checkDims(tensors, specs) {
  const seen = new Map();
  const batch = String(specs[0].shape[0]);
  tensors.forEach((tensor, i) => {
    specs[i].shape.forEach((dim, axis) => {
      if (typeof dim !== "string") return;
      const size = tensor.dims[axis];
      if (!seen.has(dim)) seen.set(dim, [size, specs[i].name]);
      const [first, owner] = seen.get(dim);
      if (first !== size) {
        const what = dim === batch ? "the batch size" : `the size of dim ${pyRepr(dim)}`;
        throw new UserInputError(`inputs disagree on ${what}: ${pyRepr(owner)} has ${first}, ${pyRepr(specs[i].name)} has ${size}`);
      }
    });
  });
  return tensors[0].dims[0];
}

/** The values of an object by input name, in input order: every input exactly once, nothing else. */
function byName(given, specs) {
  const names = specs.map((s) => s.name);
  const unknown = Object.keys(given).find((k) => !names.includes(k));
  if (unknown !== undefined) throw new UserInputError(`unknown input ${pyRepr(printable(unknown, 64))}; the model's inputs are ${names.join(", ")}`);
  const missing = names.find((n) => !Object.hasOwn(given, n));
  if (missing !== undefined) throw new UserInputError(`missing input ${pyRepr(missing)}; the model takes ${names.join(", ")}`);
  return names.map((n) => given[n]);
}

/** A plain object of tensors by input name (not a tensor, not an array). */
function isByName(value) {
  return !!value && typeof value === "object" && !Array.isArray(value) && !ArrayBuffer.isView(value) && !("data" in value && "shape" in value);
}

/** Model-ready tensors ({data, dims} per input, in input order) and a label per sample, as
 * serve_cli.tensor_inputs.tensors: ``inputs`` an object by input name (or ``[object]``), an array of one
 * tensor per input in input order, or one {data, shape} tensor for a one-input model. */
export function tensorFeeds(inputs, specs) {
  let values;
  if (isByName(inputs)) values = byName(inputs, specs);
  else if (Array.isArray(inputs) && inputs.length === 1 && isByName(inputs[0])) values = byName(inputs[0], specs);
  else if (specs.length === 1 && !Array.isArray(inputs) && inputs && typeof inputs === "object") values = [inputs];
  else if (Array.isArray(inputs) && inputs.length === specs.length) values = inputs;
  else {
    const count = Array.isArray(inputs) ? inputs.length : 1;
    const names = specs.map((s) => s.name).join(", ");
    throw new UserInputError(
      `${count} arrays given; the model takes ${specs.length} (${names}): an array per input, in this order, or a dict by name`,
    );
  }
  const tensors = values.map((value, i) => tensorInput(value, specs[i]));
  return { tensors, sources: sources(checkDims(tensors, specs)) };
}

const PREPROCESSORS = { names_one_hot: namesOneHot, image, features };

/** Model-ready {data, dims} and a display label per sample, as serve_cli.preprocess.preprocess. */
export function preprocess(inputs, params, specs) {
  const kind = params.kind;
  if (!Object.hasOwn(PREPROCESSORS, kind)) {
    throw new UserInputError(`this runtime does not know the preprocessing '${pyStr(kind)}'; upgrade torchzoo`);
  }
  if (inputs.length === 0) throw new UserInputError("no inputs given");
  if (inputs.length > LIMITS.MAX_INPUTS) {
    throw new UserInputError(`${thousands(inputs.length)} inputs in one call; at most ${thousands(LIMITS.MAX_INPUTS)}`);
  }
  return PREPROCESSORS[kind](inputs, params, specs);
}

// --- postprocessing: serve_cli.postprocess and core.tasks ----------------------------------------------

function toScores(row, transform) {
  if (transform === "exp") return row.map(Math.exp);
  if (transform === "softmax") {
    const max = Math.max(...row);
    const shifted = row.map((v) => Math.exp(v - max));
    const sum = shifted.reduce((a, b) => a + b, 0);
    return shifted.map((v) => v / sum);
  }
  if (transform === "sigmoid") return row.map((v) => 1 / (1 + Math.exp(-v)));
  return row;
}

const TASKS = {
  classification(row, labels, topK) {
    const order = row.map((_, i) => i).sort((a, b) => row[b] - row[a]);
    const top = order.slice(0, Math.max(1, topK)).map((i) => ({ label: labels[i], probability: row[i] }));
    return { label: top[0].label, top };
  },
  binary(row, labels, topK, threshold) {
    const p = row[0];
    return { label: p >= threshold ? labels[1] : labels[0], probability: p };
  },
  multilabel(row, labels, topK, threshold) {
    const present = [];
    const all = {};
    row.forEach((p, i) => {
      if (p >= threshold) present.push({ label: labels[i], probability: p });
      all[labels[i]] = p;
    });
    return { labels: present.map((p) => p.label), scores: present, all };
  },
  regression(row) {
    return { value: row.length === 1 ? row[0] : row };
  },
  tensor(row) {
    return { value: row };
  },
};

/** serve_cli.output_check: the first output is believed only when it is an answer; returns its scores. */
export function checkOutput(raw, dims, samples, manifest, shown) {
  const width = manifest.outputs[0].shape[1];
  if (!(raw instanceof Float32Array || raw instanceof Float64Array || ArrayBuffer.isView(raw))) {
    throw new OutputError(`${shown}: the graph's output is not a numeric tensor`);
  }
  if (dims.length !== 2 || dims[0] !== samples || dims[1] !== width) {
    throw new OutputError(`${shown}: the graph returned shape [${dims.join(", ")}]; the manifest says [${samples}, ${width}]`);
  }
  if (!Array.from(raw).every(Number.isFinite)) throw new OutputError(`${shown}: the graph's output holds NaN or infinity; not an answer`);
  const post = manifest.postprocessing ?? {};
  const transform = post.transform ?? "identity";
  const rows = [];
  for (let s = 0; s < samples; s++) {
    let row = toScores(Array.from(raw.subarray(s * width, (s + 1) * width)), transform);
    if (manifest.task === "regression") row = row.map((v) => v * Number(post.scale ?? 1) + Number(post.offset ?? 0));
    rows.push(row);
  }
  const all = rows.flat();
  if (!all.every(Number.isFinite)) throw new OutputError(`${shown}: the output's ${transform} is not finite; not an answer`);
  if (manifest.task !== "regression") {
    const [low, high] = [Math.min(...all), Math.max(...all)];
    if (low < 0 || high > 1 + OUTPUT_SLACK) {
      throw new OutputError(
        `${shown}: the graph gives probabilities outside [0, 1] (from ${pyG6(low)} to ${pyG6(high)}); not an answer`,
      );
    }
  }
  return rows;
}

/** Python's ``f"{x:.6g}"``. */
function pyG6(x) {
  if (x === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= 6) {
    const [m, e] = x.toExponential(5).split("e");
    return `${m.replace(/\.?0+$/, "")}e${e[0] === "-" ? "-" : "+"}${e.replace(/^[-+]/, "").padStart(2, "0")}`;
  }
  return String(Number(x.toPrecision(6)));
}

/** One result per sample from transformed scores (rows of [width]). */
export function results(scores, task, labels, topK = 3, threshold = 0.5) {
  if (!Object.hasOwn(TASKS, task)) {
    throw new UserInputError(`unknown task '${pyStr(task)}'; this torchzoo knows ${Object.keys(TASKS).join(", ")}`);
  }
  return scores.map((row) => TASKS[task](row, labels, topK, threshold));
}

// --- loading ----------------------------------------------------------------------------------------

const isNode = typeof process !== "undefined" && !!process.versions?.node && typeof window === "undefined";

async function readSource(source, filename) {
  if (isNode && !/^(https?|file|data|blob):/.test(String(source))) {
    const [{ readFile }, { join }] = await Promise.all([import("node:fs/promises"), import("node:path")]);
    const path = join(String(source), filename);
    try {
      return { path, bytes: new Uint8Array(await readFile(path)) };
    } catch (err) {
      if (err.code === "ENOENT") return { path, bytes: null };
      throw new ArtifactError(`${path} is not readable (${err.code ?? err.name})`);
    }
  }
  const base = String(source).endsWith("/") ? String(source) : `${source}/`;
  const url = new URL(filename, new URL(base, globalThis.location?.href));
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new ArtifactError(`${url} could not be fetched (${err.name})`);
  }
  if (response.status === 404) return { path: String(url), bytes: null };
  if (!response.ok) throw new ArtifactError(`${url} could not be fetched (HTTP ${response.status})`);
  return { path: String(url), bytes: new Uint8Array(await response.arrayBuffer()) };
}

async function sha256Hex(bytes) {
  const subtle = globalThis.crypto?.subtle ?? (isNode ? (await import("node:crypto")).webcrypto.subtle : undefined);
  if (!subtle) {
    throw new ArtifactError("cannot check the graph's sha256: crypto.subtle needs a secure context (https or localhost)");
  }
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The manifest, checked as torchzoo.core.artifact.read_manifest checks it (except its own sha256). */
export function checkManifest(manifest, path) {
  if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest)) {
    throw new ArtifactError(`${path} is not a manifest object`);
  }
  const missing = REQUIRED.filter((k) => !(k in manifest));
  if (missing.length) throw new ArtifactError(`${path} lacks ${missing.join(", ")}`);
  if (manifest.files === null || typeof manifest.files !== "object" || Array.isArray(manifest.files)) {
    throw new ArtifactError(`${path} has a malformed file table`);
  }
  if (!SCHEMA_VERSIONS.includes(manifest.schema_version)) {
    throw new ArtifactError(
      `${path} has schema version ${pyValue(manifest.schema_version)}; this runtime reads version ${SCHEMA_VERSIONS.join(", ")}`,
    );
  }
  return manifest;
}

/** Every output of a run checked against the manifest, as serve_cli.output_check.check_outputs: numeric, of the
 * manifest's shape (the batch's samples, fixed sizes, a dynamic dim an input names at that input's size), finite. */
export function checkOutputs(outputs, tensors, manifest, shown) {
  const sizes = {};
  manifest.inputs.forEach((spec, i) => spec.shape.forEach((dim, axis) => {
    if (typeof dim === "string" && !(dim in sizes)) sizes[dim] = tensors[i].dims[axis];
  }));
  sizes[String(manifest.outputs[0].shape[0])] = tensors[0].dims[0];
  for (const spec of manifest.outputs) {
    const output = outputs[spec.name];
    if (!output || !ArrayBuffer.isView(output.data)) throw new OutputError(`${shown}: the graph's output ${pyRepr(spec.name)} is not a numeric tensor`);
    const expected = spec.shape.map((d) => (typeof d === "string" && d in sizes ? sizes[d] : d));
    const dims = output.dims.map(Number);
    if (dims.length !== expected.length || expected.some((want, i) => typeof want === "number" && dims[i] !== want)) {
      throw new OutputError(`${shown}: the graph's output ${pyRepr(spec.name)} has shape [${dims.join(", ")}]; the manifest says ${shapeRepr(expected)}`);
    }
    if ((output.data instanceof Float32Array || output.data instanceof Float64Array) && !output.data.every(Number.isFinite)) {
      throw new OutputError(`${shown}: the graph's output ${pyRepr(spec.name)} holds NaN or infinity; not an answer`);
    }
  }
}

/** Sample ``s`` of a batch-first tensor as nested arrays of numbers (core.tasks Tensors.results' value). */
export function sampleValues(data, dims, s) {
  const rest = dims.slice(1);
  const size = rest.reduce((a, b) => a * b, 1);
  const flat = Array.from(data.subarray(s * size, (s + 1) * size), Number);
  const nest = (offset, axis) => {
    if (axis === rest.length) return flat[offset];
    const stride = rest.slice(axis + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: rest[axis] }, (_, i) => nest(offset + i * stride, axis + 1));
  };
  return nest(0, 0);
}

/** A loaded artifact: ``predict(inputs, {topK, threshold})`` as the Python runtime's ``Predictor.predict``. */
export class Model {
  constructor(manifest, session, ort, shown = manifest.model) {
    this.manifest = manifest;
    this.shown = shown;
    this.session = session;
    this.ort = ort;
    this.name = manifest.model;
    this.task = manifest.task;
    this.labels = manifest.labels;
    this.inputNames = manifest.inputs.map((i) => i.name);
    this.outputNames = manifest.outputs.map((o) => o.name);
    this.postprocessing = manifest.postprocessing ?? {};
  }

  /** Model-ready tensors for ``inputs`` (what ``predict`` feeds the graph): {tensors: [{data, dims}] in input
   * order, sources: a label per sample}. */
  prepare(inputs) {
    if (this.manifest.preprocessing.kind === "tensors") return tensorFeeds(inputs, this.manifest.inputs);
    const list = Array.isArray(inputs) ? inputs : [inputs];
    const { data, dims, sources: labels } = preprocess(list, this.manifest.preprocessing, this.manifest.inputs);
    return { tensors: [{ data, dims }], sources: labels };
  }

  /** Run the graph on model-ready tensors (input order); every output by name as {data, dims}. */
  async runGraph(tensors) {
    const feeds = {};
    this.manifest.inputs.forEach((spec, i) => {
      feeds[spec.name] = new this.ort.Tensor(spec.dtype ?? "float32", tensors[i].data, tensors[i].dims);
    });
    const outputs = await this.session.run(feeds);
    const named = {};
    for (const name of this.outputNames) {
      if (!outputs[name]) throw new ArtifactError(`${this.shown}: the graph has no output ${pyRepr(name)}, which its manifest names`);
      named[name] = { data: outputs[name].data, dims: outputs[name].dims.map(Number) };
    }
    return named;
  }

  /** Run the graph on already-preprocessed data of a one-input model; returns the first output's data and dims. */
  async run(data, dims) {
    return (await this.runGraph([{ data, dims }]))[this.outputNames[0]];
  }

  /** Raw tensors in (as ``predict`` takes them for a ``tensors`` model), every output out by name as
   * {data, dims}, checked as the Python runtime checks them. */
  async runTensors(inputs) {
    const { tensors } = tensorFeeds(inputs, this.manifest.inputs);
    const outputs = await this.runGraph(tensors);
    checkOutputs(outputs, tensors, this.manifest, this.shown);
    return outputs;
  }

  async predict(inputs, { topK = 3, threshold = 0.5 } = {}) {
    const prepared = this.prepare(inputs);
    const samples = prepared.sources.length;
    if (samples > LIMITS.MAX_BATCH) {
      throw new UserInputError(`${thousands(samples)} samples in one call; at most ${thousands(LIMITS.MAX_BATCH)}`);
    }
    const outputs = await this.runGraph(prepared.tensors);
    const first = outputs[this.outputNames[0]];
    let scored;
    if (this.task === "tensor") {
      checkOutputs(outputs, prepared.tensors, this.manifest, this.shown);
      scored = prepared.sources.map((_, s) => ({ value: sampleValues(first.data, first.dims, s) }));
    } else {
      if (this.manifest.preprocessing.kind === "tensors") checkOutputs(outputs, prepared.tensors, this.manifest, this.shown);
      const scores = checkOutput(first.data, first.dims, samples, this.manifest, this.shown);
      scored = results(scores, this.task, this.labels, topK, threshold);
    }
    return scored.map((r, i) => ({ input: prepared.sources[i], ...r }));
  }
}

/** Read and check an artifact (Node: a directory path; browser: a base URL), and create its session. */
export async function loadArtifact(source, { ort, sessionOptions = {} } = {}) {
  if (!ort?.InferenceSession) throw new TypeError("loadArtifact(source, {ort}): pass the onnxruntime module as ort");
  const manifestFile = await readSource(source, MANIFEST);
  const directory = String(source).replace(/\/+$/, "");
  if (manifestFile.bytes === null) {
    throw new ArtifactError(`${directory} has no ${MANIFEST}; run 'torchzoo export ${directory.split("/").pop()}'`);
  }
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(manifestFile.bytes));
  } catch (err) {
    throw new ArtifactError(`${manifestFile.path} is not valid JSON (${err.name})`);
  }
  checkManifest(manifest, manifestFile.path);
  const entry = manifest.files[ONNX];
  if (!entry) throw new ArtifactError(`${ONNX} is not listed in ${manifestFile.path}; re-run export`);
  const graph = await readSource(source, ONNX);
  if (graph.bytes === null) throw new ArtifactError(`${graph.path} is missing; run 'torchzoo export ${manifest.model}'`);
  if (graph.bytes.length !== entry.bytes || (await sha256Hex(graph.bytes)) !== entry.sha256) {
    throw new ArtifactError(`${graph.path} does not match the sha256 in its manifest (modified or damaged)`);
  }
  const session = await ort.InferenceSession.create(graph.bytes, sessionOptions);
  return new Model(manifest, session, ort, printable(directory));
}
