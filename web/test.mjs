// The browser build, checked in headless Chromium (web/test.sh runs it against web/serve.sh):
// the page loads without console errors, draws something (pixel variance), and training
// advances with a falling loss over SECONDS; then a CSV and a trained network go in through the
// file pickers (the network's reverse run must advance: on the GPU on the WebGPU path) and the
// weights and an animated GIF come out as downloads; on WebGPU the training device is then lost
// (the page's drill) and the CPU must take over, then the render device, and the page must
// restart on WebGL2. Prints one JSON line.
import { chromium } from 'playwright-core';

const [url, seconds = '30', mode = 'webgl'] = process.argv.slice(2);
const args = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--enable-unsafe-swiftshader'];
if (mode === 'webgpu') {
  // Without --use-angle=swiftshader headless Chromium 156 loses a WebGPU device within a
  // fraction of a second of configuring a canvas with it ("Device was destroyed", or "A
  // valid external Instance reference no longer exists"): the page goes blank.
  args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
    '--use-webgpu-adapter=swiftshader', '--use-angle=swiftshader');
}
const browser = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium', headless: true, args });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
const errors = [];
page.on('console', (m) => {
  if (m.type() === 'error') errors.push(m.text());
  if (process.env.VERBOSE) console.error(`[${m.type()}] ${m.text()}`);
});
page.on('pageerror', (e) => errors.push(String(e)));
const t0 = Date.now();
// On the WebGPU path our kernels are forced (SwiftShader is a software adapter, which `auto`
// leaves to the CPU, as natively).
await page.goto(mode === 'webgpu' ? `${url}?backend=${process.env.BACKEND ?? 'wgpu'}` : url);
const status = () => page.evaluate(() => window.diffusionPlayground?.status?.() ?? null);
// The first frame: status() answers once the app has drawn one.
let first = null;
while (!first && Date.now() - t0 < 20000) {
  first = await status();
  if (!first) await page.waitForTimeout(100);
}
const firstFrameSecs = (Date.now() - t0) / 1000;
// The first training step, looked for every 200 ms.
let firstStepSecs = null;
while (firstStepSecs === null && Date.now() - t0 < Number(seconds) * 1000) {
  if ((await status())?.step > 0) firstStepSecs = (Date.now() - t0) / 1000;
  else await page.waitForTimeout(200);
}
const samples = [];
while (Date.now() - t0 < Number(seconds) * 1000) {
  await page.waitForTimeout(1000);
  const s = await status();
  if (s) samples.push({ t: (Date.now() - t0) / 1000, step: s.step, loss: s.loss, fps: s.fps });
}
const last = await status();
// Pixel variance of a screenshot of the canvas: a blank page has none.
const png = await page.screenshot({ path: process.env.SHOT || undefined });
const variance = await page.evaluate(async (b64) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.width; c.height = img.height;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, n = d.length / 4;
  for (let i = 0; i < d.length; i += 4) { const v = (d[i] + d[i + 1] + d[i + 2]) / 3; sum += v; sq += v * v; }
  return sq / n - (sum / n) ** 2;
}, png.toString('base64'));
// A CSV through the page's file picker ("Open CSV…" at the top of the controls): a bad one
// is refused with its line, a good one replaces the data.
const fs = await import('node:fs');
const os = await import('node:os');
const path = await import('node:path');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'web-csv-'));
const bad = path.join(dir, 'bad.csv');
const good = path.join(dir, 'good.csv');
fs.writeFileSync(bad, 'x,y\n1.0,2.0\n3.0,oops\n');
fs.writeFileSync(good, Array.from({ length: 60 }, (_, i) => `${i},${2 * i}`).join('\n') + '\n');
// With the click's user activation rfd opens the browser's file chooser at once (else it shows
// its own overlay with a file input).
// A click slow enough for a page drawing a few frames per second to see.
async function click(x, y) {
  await page.mouse.move(x, y);
  await page.waitForTimeout(500);
  await page.mouse.down();
  await page.waitForTimeout(300);
  await page.mouse.up();
}
async function openCsv(file) {
  const chooser = page.waitForEvent('filechooser', { timeout: 10000 });
  await click(68, 134);
  await (await chooser).setFiles(file);
  await page.waitForTimeout(2500);
  return status();
}
// "Animation GIF" (Export, at the foot of the scrolled controls) offers the forward and
// reverse animation as a download, encoded in the page.
let gif = {};
try {
  const scroll = async (dy) => {
    await page.mouse.move(150, 400);
    for (let i = 0; i < 10; i++) { await page.mouse.wheel(0, dy); await page.waitForTimeout(200); }
    await page.waitForTimeout(800);
  };
  await scroll(400);
  await click(45, 765);
  await page.waitForTimeout(800);
  await scroll(400);
  await click(262, 743);
  await page.waitForSelector("#rfd-output", { timeout: 20000 });
  const download = page.waitForEvent('download', { timeout: 10000 });
  await page.click('#rfd-output');
  const d = await download;
  const file = path.join(dir, 'animation.gif');
  await d.saveAs(file);
  const bytes = fs.readFileSync(file);
  gif = { name: d.suggestedFilename(), bytes: bytes.length, header: bytes.subarray(0, 6).toString('latin1') };
  // Back to the top of the controls for the file pickers below.
  await scroll(-400);
} catch (e) {
  await page.screenshot({ path: process.env.GIF_SHOT || '/tmp/gif-fail.png' }).catch(() => {});
  gif = { error: String(e), status: await status() };
}
let csv = {};
try {
  const afterBad = await openCsv(bad);
  const afterGood = await openCsv(good);
  csv = { bad_error: afterBad?.data_error ?? null, good_data: afterGood?.data ?? null,
          good_points: afterGood?.points ?? null };
} catch (e) {
  csv = { error: String(e) };
}
// A trained network through "Load weights…" (the same picker): the app samples with it at once,
// and on the WebGPU path the reverse run samples on the page's device.
let loaded = {};
try {
  const chooser = page.waitForEvent('filechooser', { timeout: 10000 });
  await click(190, 736);
  await (await chooser).setFiles(process.env.WEIGHTS);
  const t1 = Date.now();
  let s = await status();
  while (Date.now() - t1 < 15000 && !(s?.trainer_notice ?? '').startsWith('loaded')) {
    await page.waitForTimeout(250);
    s = await status();
  }
  // The new weights start a new run (a run still at step 0 has not shown anything yet).
  await page.waitForTimeout(1000);
  while (Date.now() - t1 < 40000 && !(s?.run?.step > 0)) {
    await page.waitForTimeout(500);
    s = await status();
  }
  loaded = { secs: (Date.now() - t1) / 1000, notice: s?.trainer_notice ?? null, run: s?.run ?? null,
             step: s?.step ?? null };
} catch (e) {
  loaded = { error: String(e) };
}
// "Save weights…" offers the network as a download (rfd's link, clicked here).
let weights = {};
try {
  await click(76, 736);
  await page.waitForSelector('#rfd-output', { timeout: 10000 });
  const download = page.waitForEvent('download', { timeout: 10000 });
  await page.click('#rfd-output');
  const d = await download;
  const file = path.join(dir, 'weights.safetensors');
  await d.saveAs(file);
  weights = { name: d.suggestedFilename(), bytes: fs.statSync(file).size };
} catch (e) {
  weights = { error: String(e), status: await status() };
}
// WebGPU: the training device lost as in a GPU reset (the page's drill): the CPU takes over
// with a notice saying why, the page keeps drawing, and training goes on.
let lost = {};
if (mode === 'webgpu') {
  try {
    const had = await page.evaluate(() => window.diffusionPlayground.loseTrainingDevice());
    const t1 = Date.now();
    let s = await status();
    while (Date.now() - t1 < 15000 && !(s?.trainer ?? '').startsWith('cpu')) {
      await page.waitForTimeout(250);
      s = await status();
    }
    const stepAtLoss = s?.step ?? 0;
    await page.waitForTimeout(3000);
    const later = await status();
    lost = { had, secs: (Date.now() - t1) / 1000, trainer: later?.trainer, notice: later?.trainer_notice,
             steps: [stepAtLoss, later?.step], fps: later?.fps };
  } catch (e) {
    lost = { error: String(e) };
  }
  // Then the device the page draws with: the page restarts on WebGL2, saying why, and the
  // CPU trains there.
  try {
    const had = await page.evaluate(() => window.diffusionPlayground.loseRenderDevice());
    const t1 = Date.now();
    let s = null;
    while (Date.now() - t1 < 30000 && !((s?.backend ?? '').startsWith('WebGL2') && s?.step > 0)) {
      await page.waitForTimeout(500);
      s = await status().catch(() => null);
    }
    lost.render = { had, secs: (Date.now() - t1) / 1000, backend: s?.backend, step: s?.step };
  } catch (e) {
    lost.render = { error: String(e) };
  }
}
await browser.close();

const steps = samples.map((s) => s.step);
const losses = samples.map((s) => s.loss).filter((l) => l !== null && l !== undefined);
const early = losses.slice(0, 3), late = losses.slice(-3);
const mean = (a) => a.reduce((x, y) => x + y, 0) / Math.max(a.length, 1);
const report = {
  mode, first_frame_s: firstFrameSecs, status: last, pixel_variance: variance,
  first_step_s: firstStepSecs,
  steps_first: steps[0] ?? null, steps_last: steps.at(-1) ?? null,
  loss_early: mean(early), loss_late: mean(late), csv, loaded, weights, gif, lost, console_errors: errors,
};
console.log(JSON.stringify(report));
const csvOk = (csv.bad_error ?? '').includes('bad.csv:3') && csv.good_data === 'good.csv'
  && csv.good_points === 60;
// Headless screenshots of a WebGPU page come back blank here (Vulkan SwiftShader), so the
// pixel check is for WebGL2 only.
const drawn = mode === 'webgpu' || variance > 10;
const weightsOk = weights.name === 'playground.safetensors' && weights.bytes > 1000;
// WebGPU: our kernels train there and the page's self-check (one GPU step against the CPU's)
// passed, through the browser's own WGSL compiler.
const kernelsOk = mode !== 'webgpu'
  || ((last?.trainer ?? '').startsWith('wgpu') && last?.gpu_check === 'pass');
// The loaded network's reverse run advances; on WebGPU it samples there (our sampler kernels
// through the browser's compiler, read back without blocking the page).
const runOk = (loaded.notice ?? '').startsWith('loaded') && loaded.run?.step > 0 && !loaded.run?.failed
  && loaded.run?.device === (mode === 'webgpu' ? 'gpu' : 'cpu');
const lostOk = mode !== 'webgpu' || (lost.had === true && (lost.trainer ?? '').startsWith('cpu')
  && (lost.notice ?? '').includes('GPU failed') && lost.steps[1] > lost.steps[0]
  && lost.render?.had === true && (lost.render?.backend ?? '').includes('restarted on WebGL2')
  && lost.render?.step > 0);
const gifOk = (gif.name ?? '').endsWith('.gif') && gif.header === 'GIF89a' && gif.bytes > 10000;
const ok = gifOk && lostOk && runOk && weightsOk && errors.length === 0 && drawn && steps.length > 1 && steps.at(-1) > steps[0]
  && late.length > 0 && mean(late) < mean(early) && csvOk && kernelsOk;
if (!ok) { console.error('web test failed'); process.exit(1); }
