// The demo page: UI on the main thread, the engine in worker.js.
const $ = (id) => document.getElementById(id);
const MAX_IMAGE_BYTES = 64 << 20;
let worker = null;
let nextId = 0;
const pending = new Map();
let lastImage = null; // { bytes } or { rgba, width, height }
window.vitrineCount = 0;

function status(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function request(type, body = {}, transfer = []) {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, type, ...body }, transfer);
  });
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

function showModel(m) {
  $("model-line").textContent =
    `model: ${m.architecture}, ${m.num_classes} classes, input ${m.input_size.join("x")}, ${(m.parameters / 1e6).toFixed(2)} M parameters`;
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
  status("Classifying…", "busy");
  try {
    const r = image.bytes
      ? await request("classify", { bytes: image.bytes.slice(), name: image.name })
      : await request("classifyRgba", { data: image.rgba.slice(), width: image.width, height: image.height });
    lastImage = image;
    render(r);
    window.vitrineLast = r;
    window.vitrineCount += 1;
    status("Ready", "ready");
  } catch (e) {
    showError(String(e.message ?? e));
    status("Ready (last request failed)", "ready");
    window.vitrineCount += 1;
  }
}

async function classifyFile(file) {
  if (!file) return;
  if (file.size > MAX_IMAGE_BYTES) {
    showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MiB; images up to ${MAX_IMAGE_BYTES >> 20} MiB are accepted`);
    return;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  try { await preview(await createImageBitmap(file)); } catch { /* the engine reports undecodable files */ }
  await classify({ bytes, name: file.name });
}

function wireInputs() {
  $("file").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    e.target.value = ""; // picking the same file again must fire "change" again
    await classifyFile(f);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); classifyFile(e.dataTransfer.files[0]); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
  window.addEventListener("paste", (e) => {
    const item = [...e.clipboardData.items].find((i) => i.type.startsWith("image/"));
    if (item) classifyFile(item.getAsFile());
  });
  $("webcam").addEventListener("click", async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true });
      const v = $("video");
      v.srcObject = stream; v.hidden = false; $("snap").hidden = false;
      await v.play();
    } catch (e) { showError(`webcam: ${e.message ?? e}`); }
  });
  $("snap").addEventListener("click", async () => {
    const v = $("video");
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
    status("Loading model…", "busy");
    try {
      const config = cfg ? await cfg.text() : null;
      const weights = new Uint8Array(await w.arrayBuffer());
      const m = await request("load", { config, weights });
      showModel(m);
      window.vitrineModels = (window.vitrineModels ?? 0) + 1;
      status("Ready", "ready");
      if (lastImage) await classify(lastImage);
    } catch (e) {
      showError(String(e.message ?? e));
      status("Ready (model not loaded)", "ready");
      window.vitrineModels = (window.vitrineModels ?? 0) + 1;
    }
  });
  $("default").addEventListener("click", async () => {
    showModel(await request("default"));
    if (lastImage) await classify(lastImage);
  });
}

async function samples() {
  try {
    const names = (await (await fetch("samples/index.txt")).text()).split("\n").filter(Boolean);
    $("samples").replaceChildren(...names.map((n) => {
      const img = document.createElement("img");
      img.src = `samples/${n}`; img.alt = n; img.title = n;
      img.addEventListener("click", async () => {
        const blob = await (await fetch(img.src)).blob();
        await classifyFile(new File([blob], n, { type: blob.type }));
      });
      return img;
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
  const gpuInfo = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, features: [...adapter.features].sort().join(", ") };
  showAdapter(gpuInfo, null);
  worker = new Worker("worker.js", { type: "module" });
  worker.onmessage = (e) => {
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    e.data.ok ? p.resolve(e.data.result) : p.reject(new Error(e.data.error));
  };
  worker.onerror = (e) => { status(`worker failed: ${e.message}`, "error"); };
  wireInputs();
  samples();
  status("Loading the engine and the built-in model…", "busy");
  try {
    const r = await request("init");
    showAdapter(gpuInfo, r.adapter);
    showModel(r.model);
    status("Ready", "ready");
  } catch (e) {
    status(`Engine failed: ${e.message ?? e}`, "error");
  }
}

main();
