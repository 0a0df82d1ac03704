// The demo page: UI on the main thread, the engine in worker.js.
import { initTeach } from "./teach.js";

const $ = (id) => document.getElementById(id);
const MAX_IMAGE_BYTES = 64 << 20;
let worker = null; // null before the first request and after the worker failed: the next request starts a new one
let started = null; // the current worker's "init" reply (a promise)
let gpuInfo = null;
let nextId = 0;
const pending = new Map();
let inFlight = 0;
let lastImage = null; // { bytes } or { rgba, width, height }
let camera = null; // the webcam's MediaStream while the webcam is on
let cameraToken = 0; // bumped whenever the webcam is stopped, so a late getUserMedia is dropped
let teach = null; // the "teach your own classes" card (teach.js)
window.vitrineCount = 0;

function status(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function request(type, body = {}, transfer = []) {
  const id = ++nextId;
  if (!worker) return Promise.reject(engineDown("The engine's worker stopped"));
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, type, ...body }, transfer);
  });
}

// An error the engine cannot recover from by itself: the page shows it in the
// status line and the next request starts a fresh worker.
function engineDown(msg) {
  const e = new Error(msg);
  e.engineDown = true;
  return e;
}

function stopWorker(w, msg) {
  if (worker !== w) return;
  worker = null;
  started = null;
  w.terminate();
  const err = engineDown(msg);
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  // Shown even when no request was waiting (a worker that died while idle).
  showError(msg);
  status(`${msg}. Try again: the engine restarts on the next request.`, "error");
}

function startWorker() {
  const w = new Worker("worker.js", { type: "module" });
  w.onmessage = (e) => {
    if (e.data.fatal) { stopWorker(w, e.data.fatal); return; }
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.recovered) {
      // Said on the page (and counted for the tests): the request still succeeded.
      window.vitrineRecovered = (window.vitrineRecovered ?? 0) + 1;
      $("notice").textContent = e.data.recovered;
      $("notice").hidden = false;
    }
    e.data.ok ? p.resolve(e.data.result) : p.reject(new Error(e.data.error));
  };
  // A module that fails to load gives a plain Event (no message); a throw outside a request an ErrorEvent.
  w.onerror = (e) => stopWorker(w, `The engine's worker failed: ${e.message || "it could not start (see the browser console)"}`);
  w.onmessageerror = () => stopWorker(w, "The engine's worker failed: one of its replies could not be read");
  worker = w;
  started = request("init").then((r) => {
    showAdapter(gpuInfo, r.adapter);
    showModel(r.model, true);
    return r;
  }, (e) => {
    if (e.engineDown) throw e;
    const msg = `Engine failed: ${e.message ?? e}`;
    stopWorker(w, msg);
    throw engineDown(msg);
  });
  return started;
}

// Sends a request, starting the worker (and loading the built-in model) first when there is none.
// For scripts and the end-to-end test: a request to the engine's worker (e.g.
// vitrineCall("classifyMany", { images: [bytes, ...] })).
window.vitrineCall = (type, body = {}) => call("Working…", type, body).finally(() => status("Ready", "ready"));

async function call(text, type, body = {}, transfer = []) {
  if (!worker) {
    status("Loading the engine and the built-in model…", "busy");
    await startWorker();
  } else {
    await started;
  }
  status(text, "busy");
  return request(type, body, transfer);
}

// Buttons that start a request are off while one runs; a failure turns them back on.
function busy(delta) {
  inFlight = Math.max(0, inFlight + delta);
  for (const id of ["load", "default", "snap"]) $(id).disabled = inFlight > 0;
  $("result-card").setAttribute("aria-busy", String(inFlight > 0));
}

function failed(e, readyText) {
  const msg = String(e.message ?? e);
  showError(msg);
  if (e.engineDown) status(`${msg}. Try again: the engine restarts on the next request.`, "error");
  else status(readyText, "ready");
}

function showError(msg) {
  $("error").textContent = msg;
  window.vitrineError = msg;
}

function showAdapter(gpuInfo, engineInfo) {
  const a = engineInfo?.adapter ?? {};
  const rows = [
    ["vendor", gpuInfo?.vendor || "?"],
    ["architecture", gpuInfo?.architecture || "?"],
    ["device", gpuInfo?.device || gpuInfo?.description || a.name || "?"],
    ["backend", a.backend ?? "WebGPU"],
    ["features", gpuInfo?.features || ""],
    ["shader-f16", String(a.shader_f16 ?? "?")],
    ["max storage binding", `${Math.round((engineInfo?.max_storage_binding_bytes ?? 0) / 2 ** 20)} MiB`],
    ["matmul kernel", engineInfo?.matmul ?? "?"],
  ];
  $("adapter").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
}

function showModel(m, builtin) {
  $("model-line").textContent =
    `model: ${m.architecture}, ${m.num_classes} classes, input ${m.input_size.join("x")}, ${(m.parameters / 1e6).toFixed(2)} M parameters`;
  $("builtin-about").hidden = !builtin; // what the built-in model recognises; wrong for a user's model
}

function render(r) {
  const ol = $("top5");
  ol.replaceChildren(...r.top_k.map((p) => {
    const li = document.createElement("li");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${(p.prob * 100).toFixed(1)}%`;
    const name = document.createElement("span"); name.textContent = p.label;
    const pct = document.createElement("span"); pct.textContent = `${(p.prob * 100).toFixed(1)}%`;
    li.append(bar, name, pct);
    return li;
  }));
  // DVT: which exit answered and what it cost, against running every exit.
  const ex = $("exit");
  ex.hidden = r.exit === undefined;
  if (r.exit !== undefined) {
    const costs = r.exit_costs ?? [];
    const all = costs[costs.length - 1];
    ex.textContent = `Answered by exit ${r.exit + 1} of ${costs.length}: ${r.exit_gflops.toFixed(3)} GFLOPs` +
      (all ? ` (${((r.exit_gflops / all) * 100).toFixed(0)}% of running every exit, ${all.toFixed(3)} GFLOPs)` : "");
  }
  const t = r.timings;
  const rows = [["preprocess", t.preprocess_ms], ["compile (first run)", t.compile_ms], ["GPU", t.gpu_ms], ["readback", t.readback_ms], ["total", t.total_ms]];
  $("timings").replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${k}</td><td>${v.toFixed(1)} ms</td>`;
    return tr;
  }));
}

async function preview(source) {
  const c = $("preview");
  const ctx = c.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, c.width, c.height);
  const s = Math.min(c.width / source.width, c.height / source.height);
  const w = source.width * s, h = source.height * s;
  ctx.drawImage(source, (c.width - w) / 2, (c.height - h) / 2, w, h);
}

async function classify(image) {
  showError("");
  busy(+1);
  try {
    const r = image.bytes
      ? await call("Classifying…", "classify", { bytes: image.bytes.slice(), name: image.name })
      : await call("Classifying…", "classifyRgba", { data: image.rgba.slice(), width: image.width, height: image.height });
    lastImage = image;
    render(r);
    window.vitrineLast = r;
    status("Ready", "ready");
    if ($("attn").checked) await showAttention();
  } catch (e) {
    failed(e, "Ready (last request failed)");
  } finally {
    busy(-1);
    window.vitrineCount += 1;
  }
}

// The attention map of the last image (ViT / DeiT), when the toggle is on: drawn by the engine
// (the model's view of the image, the map over it) beside the top-5.
let attnUrl = null;
async function showAttention() {
  const on = $("attn").checked && lastImage;
  $("attn-figure").hidden = !on;
  $("attn-msg").textContent = "";
  if (!on) return;
  const which = $("attn-kind").value;
  const body = lastImage.bytes
    ? { bytes: lastImage.bytes.slice(), name: lastImage.name, which }
    : { data: lastImage.rgba.slice(), width: lastImage.width, height: lastImage.height, which };
  try {
    const png = await call("Drawing the attention map…", "attention", body);
    if (attnUrl) URL.revokeObjectURL(attnUrl);
    attnUrl = URL.createObjectURL(new Blob([png], { type: "image/png" }));
    await new Promise((resolve, reject) => {
      const img = $("attn-img");
      img.onload = resolve;
      img.onerror = () => reject(new Error("the attention map did not decode"));
      img.src = attnUrl;
    });
    $("attn-caption").textContent = $("attn-kind").selectedOptions[0].textContent;
    window.vitrineAttention = { ok: true };
    status("Ready", "ready");
  } catch (e) {
    $("attn-figure").hidden = true;
    $("attn-msg").textContent = String(e.message ?? e);
    window.vitrineAttention = { ok: false, error: String(e.message ?? e) };
    status("Ready", "ready");
  } finally {
    window.vitrineAttentionCount = (window.vitrineAttentionCount ?? 0) + 1;
  }
}

async function classifyFile(file) {
  if (!file) return;
  stopWebcam(); // a file, a drop, a paste or a sample leaves the webcam mode
  if (file.size > MAX_IMAGE_BYTES) {
    showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MiB; images up to ${MAX_IMAGE_BYTES >> 20} MiB are accepted`);
    return;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  try { await preview(await createImageBitmap(file)); } catch { /* the engine reports undecodable files */ }
  await classify({ bytes, name: file.name });
}

function stopWebcam() {
  cameraToken += 1;
  if (camera) for (const t of camera.getTracks()) t.stop();
  camera = null;
  const v = $("video");
  v.pause();
  v.srcObject = null;
  v.hidden = true;
  $("snap").hidden = true;
  $("webcam").textContent = "Use webcam";
  $("webcam").setAttribute("aria-pressed", "false");
}

async function startWebcam() {
  const token = ++cameraToken;
  const stream = await navigator.mediaDevices.getUserMedia({ video: true });
  if (token !== cameraToken) { // the user left the webcam mode while the browser asked
    for (const t of stream.getTracks()) t.stop();
    return;
  }
  camera = stream;
  for (const t of stream.getTracks()) t.addEventListener("ended", () => { if (camera === stream) stopWebcam(); });
  const v = $("video");
  v.srcObject = stream; v.hidden = false; $("snap").hidden = false;
  $("webcam").textContent = "Stop webcam";
  $("webcam").setAttribute("aria-pressed", "true");
  await v.play();
}

function wireInputs() {
  $("attn").addEventListener("change", showAttention);
  $("attn-kind").addEventListener("change", showAttention);
  $("file").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    e.target.value = ""; // picking the same file again must fire "change" again
    await classifyFile(f);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); classifyFile(e.dataTransfer.files[0]); });
  drop.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" && e.key !== " ") return;
    e.preventDefault(); // no page scroll on Space
    $("file").click();
  });
  window.addEventListener("paste", (e) => {
    const item = [...e.clipboardData.items].find((i) => i.type.startsWith("image/"));
    if (item && !teach?.paste(item.getAsFile())) classifyFile(item.getAsFile());
  });
  $("webcam").addEventListener("click", async () => {
    if (camera) { stopWebcam(); return; }
    try {
      await startWebcam();
    } catch (e) {
      stopWebcam();
      showError(`webcam: ${e.message ?? e}`);
    }
  });
  // The camera goes off with the page: hidden (another tab, minimised) or left.
  document.addEventListener("visibilitychange", () => { if (document.hidden) stopWebcam(); });
  window.addEventListener("pagehide", stopWebcam);
  $("snap").addEventListener("click", async () => {
    const v = $("video");
    if (!camera || !v.videoWidth) { showError("webcam: no picture yet"); return; }
    const c = new OffscreenCanvas(v.videoWidth, v.videoHeight);
    const ctx = c.getContext("2d");
    ctx.drawImage(v, 0, 0);
    const data = ctx.getImageData(0, 0, c.width, c.height);
    await preview(c);
    await classify({ rgba: new Uint8Array(data.data.buffer), width: c.width, height: c.height });
  });
  $("load").addEventListener("click", async () => {
    const cfg = $("cfg").files[0], w = $("weights").files[0];
    if (!w) { showError("pick model.safetensors (and its config.json)"); return; }
    showError("");
    busy(+1);
    let loaded = false;
    try {
      const config = cfg ? await cfg.text() : null;
      const weights = new Uint8Array(await w.arrayBuffer());
      const m = await call("Loading model…", "load", { config, weights });
      showModel(m, false);
      loaded = true;
      status("Ready", "ready");
    } catch (e) {
      failed(e, "Ready (model not loaded)");
    } finally {
      busy(-1);
      window.vitrineModels = (window.vitrineModels ?? 0) + 1;
    }
    if (loaded && lastImage) await classify(lastImage); // the page re-classifies the last image with the new model
  });
  $("default").addEventListener("click", async () => {
    showError("");
    busy(+1);
    let loaded = false;
    try {
      showModel(await call("Loading the built-in model…", "default"), true);
      loaded = true;
      status("Ready", "ready");
    } catch (e) {
      failed(e, "Ready (model not changed)");
    } finally {
      busy(-1);
    }
    if (loaded && lastImage) await classify(lastImage);
  });
}

// "ankle-boot-0.png" -> "ankle boot", "t-shirt-19.png" -> "t-shirt"
const sampleName = (file) => file.replace(/\.[^.]*$/, "").replace(/-\d+$/, "").replace(/(?<=\w\w)-/g, " ");

async function samples() {
  try {
    const names = (await (await fetch("samples/index.txt")).text()).split("\n").filter(Boolean);
    $("samples").replaceChildren(...names.map((n) => {
      // A real button: focusable, Enter and Space click it.
      const b = document.createElement("button");
      b.type = "button";
      b.title = n;
      const img = document.createElement("img");
      img.src = `samples/${n}`; img.alt = `sample: ${sampleName(n)}`;
      b.append(img);
      b.addEventListener("click", async () => {
        const blob = await (await fetch(img.src)).blob();
        await classifyFile(new File([blob], n, { type: blob.type }));
      });
      return b;
    }));
  } catch { /* samples are optional */ }
}

async function main() {
  if (!navigator.gpu) {
    $("nogpu").hidden = false;
    $("nogpu-why").textContent = "This browser does not expose navigator.gpu.";
    status("WebGPU is not available", "error");
    return;
  }
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) {
    $("nogpu").hidden = false;
    $("nogpu-why").textContent = "navigator.gpu.requestAdapter() found no GPU adapter.";
    status("No WebGPU adapter", "error");
    return;
  }
  const info = adapter.info ?? {};
  gpuInfo = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, features: [...adapter.features].sort().join(", ") };
  showAdapter(gpuInfo, null);
  wireInputs();
  teach = initTeach({
    $, call, status,
    camera: () => (camera ? $("video") : null),
    onTrained: async (m) => {
      showModel(m, false);
      if (lastImage) await classify(lastImage); // the last image, classified by the trained model
    },
  });
  samples();
  status("Loading the engine and the built-in model…", "busy");
  try {
    await startWorker();
    status("Ready", "ready");
  } catch (e) {
    failed(e, "Ready"); // an engine failure goes to the status line; the next request tries again
  }
}

main();
