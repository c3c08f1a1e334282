// A drawing (white strokes on black, any size) -> 28x28 uint8 pixels as MNIST prepares its digits: the
// bounding box of the ink is scaled (area averaging) so its longer side is 20 pixels, then placed in a
// 28x28 field with its centre of mass at the centre. Plain arithmetic, so every browser gives the same pixels.

/** Resample a float image [h][w] to [dh][dw] by area averaging (each output pixel: the mean of what it covers). */
function areaWeights(size, target) {
  const scale = size / target;
  return Array.from({ length: target }, (_, d) => {
    const start = d * scale;
    const end = (d + 1) * scale;
    const taps = [];
    for (let s = Math.floor(start); s < Math.min(size, Math.ceil(end)); s++) {
      const w = Math.min(end, s + 1) - Math.max(start, s);
      if (w > 0) taps.push([s, w / scale]);
    }
    return taps;
  });
}

function areaResize(src, width, height, targetWidth, targetHeight) {
  const wx = areaWeights(width, targetWidth);
  const wy = areaWeights(height, targetHeight);
  const rows = new Float64Array(height * targetWidth);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < targetWidth; x++) {
      let sum = 0;
      for (const [s, w] of wx[x]) sum += src[y * width + s] * w;
      rows[y * targetWidth + x] = sum;
    }
  }
  const out = new Float64Array(targetHeight * targetWidth);
  for (let y = 0; y < targetHeight; y++) {
    for (let x = 0; x < targetWidth; x++) {
      let sum = 0;
      for (const [s, w] of wy[y]) sum += rows[s * targetWidth + x] * w;
      out[y * targetWidth + x] = sum;
    }
  }
  return out;
}

/** ImageData of a drawing -> Uint8Array(784) MNIST-like pixels, or null when nothing is drawn. */
export function drawingToMnist(image, box = 20, size = 28) {
  const { width, height, data } = image;
  const grey = new Float64Array(width * height);
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let i = 0; i < width * height; i++) {
    grey[i] = data[4 * i]; // the red channel of white-on-black strokes
    if (grey[i] > 0) {
      const x = i % width;
      const y = (i - x) / width;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  if (x1 < 0) return null;
  const [w, h] = [x1 - x0 + 1, y1 - y0 + 1];
  const crop = new Float64Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) crop[y * w + x] = grey[(y0 + y) * width + x0 + x];
  const scale = box / Math.max(w, h);
  const [tw, th] = [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
  const small = areaResize(crop, w, h, tw, th);
  let [mass, mx, my] = [0, 0, 0];
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const v = small[y * tw + x];
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  const left = Math.round((size - 1) / 2 - mx / mass);
  const top = Math.round((size - 1) / 2 - my / mass);
  const out = new Uint8Array(size * size);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const [X, Y] = [x + left, y + top];
      if (X >= 0 && X < size && Y >= 0 && Y < size) out[Y * size + X] = Math.min(255, Math.round(small[y * tw + x]));
    }
  }
  return out;
}
