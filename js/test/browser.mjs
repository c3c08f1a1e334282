// Headless Chromium (Debian's /usr/bin/chromium, no browser download) driven by playwright-core, for
// tests/test_js_client.py and the benchmark. Reads a JSON request on stdin:
//   {url, screenshot?, name?, digit? (784 uint8), stroke?, bundleTexts?, bench?: {models, repeats, rounds}}
// opens the demo page at url, types the name, injects the digit into the canvas pipeline, and prints JSON.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run",
];

const request = JSON.parse(readFileSync(0, "utf-8"));
const profile = mkdtempSync(join(tmpdir(), "torchzoo-chromium-"));
const answer = { console: [] };
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1000, height: 900 }, timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(60_000);
  page.on("console", (m) => answer.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => answer.console.push(`pageerror: ${e.message}`));
  await page.goto(request.url);
  if (request.bundleTexts) {
    // the page `torchzoo embed` writes: type rows into its text box, press Predict, read its JSON or error
    answer.bundle = [];
    for (const text of request.bundleTexts) {
      await page.evaluate(() => { document.querySelector("#json").textContent = document.querySelector("#error").textContent = ""; });
      await page.fill("#text", text);
      await page.click("#run");
      await page.waitForFunction(() => document.querySelector("#json").textContent || document.querySelector("#error").textContent);
      answer.bundle.push(await page.evaluate(() => ({
        json: document.querySelector("#json").textContent,
        error: document.querySelector("#error").textContent,
      })));
    }
  } else {
    answer.loaded = await page.evaluate(() => window.torchzooDemo.ready);
  }
  if (request.name !== undefined) {
    await page.fill("#name", "");
    await page.type("#name", request.name, { delay: 20 });
    await page.waitForFunction((n) => window.torchzooDemo.lastNameResults?.input === n || document.querySelector("#name-error").textContent, request.name);
    answer.name = await page.evaluate(() => ({
      result: window.torchzooDemo.lastNameResults,
      top1: document.querySelector("#name-bars")?.dataset.top1 ?? null,
      shown: [...document.querySelectorAll("#name-bars .bar")].map((b) => b.innerText.replace(/\s+/g, " ").trim()),
      error: document.querySelector("#name-error").textContent,
    }));
  }
  if (request.digit) {
    answer.digit = await page.evaluate(async (pixels) => {
      const results = await window.torchzooDemo.drawPixels(pixels);
      const table = [...document.querySelectorAll("#digit-table tbody tr")].map((r) => [...r.cells].map((c) => c.textContent));
      return { pixels: window.torchzooDemo.lastPixels, results, table };
    }, request.digit);
  }
  if (request.stroke) {
    // a person drawing: a "1" as one mouse stroke down the middle of the pad
    await page.click("#clear");
    const box = await page.locator("#pad").boundingBox();
    await page.mouse.move(box.x + 150, box.y + 40);
    await page.mouse.down();
    for (let y = 40; y <= 240; y += 10) await page.mouse.move(box.x + 150 - (y - 40) / 20, box.y + y);
    await page.mouse.up();
    await page.waitForFunction(() => document.querySelectorAll("#digit-table tbody tr").length > 0);
    answer.stroke = await page.evaluate(() => ({
      pixels: window.torchzooDemo.lastPixels,
      results: window.torchzooDemo.lastDigitResults,
      table: [...document.querySelectorAll("#digit-table tbody tr")].map((r) => [...r.cells].map((c) => c.textContent)),
    }));
  }
  if (request.digit && request.stroke) await page.evaluate((p) => window.torchzooDemo.drawPixels(p), request.digit);
  if (request.screenshot) await page.screenshot({ path: request.screenshot, fullPage: true });
  if (request.bench) {
    answer.bench = await page.evaluate(async ({ models, repeats, rounds }) => {
      const demo = window.torchzooDemo;
      const out = {};
      for (const [name, input] of Object.entries(models)) {
        const model = name === "names" ? demo.names : demo.digits.find((m) => m.name === name);
        const sample = name === "names" ? input : { data: Uint8Array.from(input), shape: [1, 28, 28] };
        for (let i = 0; i < 20; i++) await model.predict([sample]); // warm-up
        const perCall = [];
        for (let r = 0; r < rounds; r++) {
          const t0 = performance.now();
          for (let i = 0; i < repeats; i++) await model.predict([sample]);
          perCall.push((performance.now() - t0) / repeats);
        }
        out[name] = perCall;
      }
      return out;
    }, request.bench);
  }
} catch (err) {
  answer.error = `${err.name}: ${err.message}`;
} finally {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(answer));
