// "Teach your own classes": fine-tunes the loaded model on images the user gives, on the GPU
// through the engine's worker (startTraining / addExample / trainStep / useTrained /
// exportModel), with a live loss and accuracy chart; the result classifies on the page and
// downloads in the hub layout (config.json + model.safetensors: timm and the CLI load it).
const MAX_CLASSES = 10;

// deps: { $, call, status, onTrained(info), camera() -> HTMLVideoElement | null }
export function initTeach(deps) {
  const { $, call } = deps;
  const state = { classes: [], active: 0, stop: false, running: false, loading: 0 };
  window.vitrineTeach = { done: false, history: [], error: null, images: [] };

  function setClasses() {
    const names = $("teach-names").value.split(",").map((s) => s.trim()).filter(Boolean);
    if (names.length < 2 || names.length > MAX_CLASSES) {
      $("teach-status").textContent = `Name 2 to ${MAX_CLASSES} classes, separated by commas.`;
      return;
    }
    const old = new Map(state.classes.map((c) => [c.name, c.images]));
    state.classes = names.map((name) => ({ name, images: old.get(name) ?? [] }));
    state.active = 0;
    render();
  }

  function render() {
    const root = $("teach-classes");
    root.replaceChildren(...state.classes.map((c, k) => {
      const box = document.createElement("div");
      box.className = "teach-class";
      box.tabIndex = 0;
      box.dataset.k = String(k);
      box.classList.toggle("active", k === state.active);
      const head = document.createElement("div");
      head.className = "row";
      const title = document.createElement("strong");
      title.textContent = `${c.name} (${c.images.length})`;
      const input = document.createElement("input");
      input.type = "file"; input.multiple = true; input.accept = "image/*";
      input.setAttribute("aria-label", `add images of ${c.name}`);
      input.addEventListener("change", async () => { await addFiles(k, [...input.files]); input.value = ""; });
      const burst = document.createElement("button");
      burst.type = "button"; burst.textContent = "Add 8 webcam frames";
      burst.addEventListener("click", () => addBurst(k));
      head.append(title, input, burst);
      const thumbs = document.createElement("div");
      thumbs.className = "thumbs";
      c.images.forEach((im, i) => {
        const t = document.createElement("img");
        t.src = im.url; t.alt = im.name; t.title = "click to remove";
        t.addEventListener("click", () => { URL.revokeObjectURL(im.url); c.images.splice(i, 1); render(); });
        thumbs.append(t);
      });
      box.append(head, thumbs);
      box.addEventListener("focus", () => { state.active = k; for (const b of root.children) b.classList.toggle("active", b === box); });
      box.addEventListener("dragover", (e) => { e.preventDefault(); box.classList.add("over"); });
      box.addEventListener("dragleave", () => box.classList.remove("over"));
      box.addEventListener("drop", (e) => { e.preventDefault(); box.classList.remove("over"); addFiles(k, [...e.dataTransfer.files]); });
      return box;
    }));
    const total = state.classes.reduce((n, c) => n + c.images.length, 0);
    $("teach-train").disabled = state.running || state.loading > 0 || total === 0; // not while files are still being read
    window.vitrineTeach.images = state.loading > 0 ? null : state.classes.map((c) => c.images.length);
  }

  async function addFiles(k, files) {
    state.loading += 1;
    render();
    try {
      for (const f of files.filter((f) => f.type.startsWith("image/") || /\.(png|jpe?g|gif|bmp|webp|tiff?)$/i.test(f.name))) {
        const bytes = new Uint8Array(await f.arrayBuffer());
        state.classes[k].images.push({ name: f.name, bytes, url: URL.createObjectURL(f) });
      }
    } finally {
      state.loading -= 1;
      render();
    }
  }

  async function addBurst(k) {
    const v = deps.camera();
    if (!v) { $("teach-status").textContent = "Start the webcam above first."; return; }
    state.loading += 1;
    try {
      await burst(k, v);
    } finally {
      state.loading -= 1;
      render();
    }
  }

  async function burst(k, v) {
    const c = document.createElement("canvas");
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext("2d");
    for (let i = 0; i < 8; i++) {
      g.drawImage(v, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height);
      const blob = await new Promise((r) => c.toBlob(r, "image/png"));
      state.classes[k].images.push({ name: `webcam ${i + 1}`, rgba: d.data, width: d.width, height: d.height, url: URL.createObjectURL(blob) });
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  // Paste goes to the focused class box (the page's classifier gets it otherwise).
  function paste(file) {
    const inTeach = document.activeElement?.closest?.(".teach-class");
    if (!inTeach) return false;
    addFiles(Number(inTeach.dataset.k), [file]);
    return true;
  }

  function chart(history, epochs) {
    const cv = $("teach-chart"), g = cv.getContext("2d");
    const [w, h, l, b] = [cv.width, cv.height, 40, 22];
    g.clearRect(0, 0, w, h);
    g.font = "11px sans-serif"; g.fillStyle = "#333"; g.strokeStyle = "#999";
    g.beginPath(); g.moveTo(l, 8); g.lineTo(l, h - b); g.lineTo(w - 40, h - b); g.stroke();
    if (!history.length) return;
    const spe = history[0].steps_per_epoch, total = Math.max(spe * epochs, history.length);
    const maxLoss = Math.max(...history.map((r) => r.loss), 1e-6);
    const x = (i) => l + (i + 1) / total * (w - 40 - l), yL = (v) => h - b - v / maxLoss * (h - b - 8), yA = (v) => h - b - v / 100 * (h - b - 8);
    const line = (color, y) => { g.strokeStyle = color; g.lineWidth = 2; g.beginPath(); history.forEach((r, i) => (i ? g.lineTo : g.moveTo).call(g, x(i), y(r))); g.stroke(); };
    line("#1f77b4", (r) => yL(r.loss));
    line("#d62728", (r) => yA(r.epoch_accuracy));
    g.lineWidth = 1; g.fillStyle = "#1f77b4"; g.fillText(`loss (0 to ${maxLoss.toFixed(2)})`, w - 220, 18);
    g.fillStyle = "#d62728"; g.fillText("epoch accuracy (0 to 100 %)", w - 220, 32);
    g.fillStyle = "#333"; g.fillText(`step (${epochs} epochs x ${spe})`, w / 2 - 40, h - 6);
  }

  async function train() {
    const n = (id, lo, hi) => { const v = Number($(id).value); if (!(v >= lo && v <= hi)) throw new Error(`${$(id).dataset.name} must be ${lo} to ${hi}`); return v; };
    if (state.loading > 0) return; // the button is off meanwhile
    state.stop = false; state.running = true; window.vitrineTeach = { done: false, history: [], error: null, images: window.vitrineTeach.images };
    $("teach-stop").disabled = false; $("teach-train").disabled = true;
    $("teach-config").disabled = $("teach-weights").disabled = true;
    $("teach-curves").replaceChildren();
    try {
      const epochs = n("teach-epochs", 1, 1000);
      const options = {
        classes: state.classes.map((c) => c.name), epochs, batchSize: n("teach-batch", 1, 512), lr: n("teach-lr", 1e-8, 1),
        freezeBackbone: $("teach-freeze").checked, augment: $("teach-aug").checked,
      };
      const info = await call("Preparing training…", "startTraining", { options });
      for (const [k, c] of state.classes.entries()) {
        for (const im of c.images) {
          await call(`Adding examples of ${c.name}…`, "addExample", im.bytes
            ? { class: k, bytes: im.bytes.slice(), name: im.name }
            : { class: k, data: im.rgba.slice(), width: im.width, height: im.height });
        }
      }
      const history = window.vitrineTeach.history;
      const t0 = performance.now();
      for (;;) {
        const r = await call("Training…", "trainStep");
        history.push(r);
        chart(history, epochs);
        const seen = history.length * options.batchSize, secs = (performance.now() - t0) / 1000;
        $("teach-status").textContent = `epoch ${r.epoch + 1}/${epochs}, step ${r.step + 1}/${r.steps_per_epoch}: loss ${r.loss.toFixed(4)}, ` +
          `epoch accuracy ${r.epoch_accuracy.toFixed(1)} %, ${(seen / secs).toFixed(1)} images/s (${info.trainable.toLocaleString()} parameters trained)`;
        if (r.epoch_done) $("teach-curves").innerHTML = await call("Training…", "trainingCurves"); // vitrine train's curves.svg, drawn by the engine
        if (state.stop || (r.epoch_done && r.epoch + 1 >= epochs)) break;
      }
      const model = await call("Using the trained model…", "useTrained");
      deps.onTrained(model);
      $("teach-config").disabled = $("teach-weights").disabled = false;
      $("teach-status").textContent += state.stop ? " — stopped; the page now classifies with it." : " — done; the page now classifies with it.";
      window.vitrineTeach.done = true;
    } catch (e) {
      $("teach-status").textContent = `Training failed: ${e.message ?? e}`;
      window.vitrineTeach.error = String(e.message ?? e);
    } finally {
      state.running = false;
      $("teach-stop").disabled = true;
      render();
      deps.status("Ready", "ready");
    }
  }

  async function download(which) {
    const { config, weights } = await call("Exporting…", "exportModel");
    const blob = which === "config" ? new Blob([config], { type: "application/json" }) : new Blob([weights], { type: "application/octet-stream" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = which === "config" ? "config.json" : "model.safetensors";
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    deps.status("Ready", "ready");
  }

  $("teach-setup").addEventListener("click", setClasses);
  $("teach-train").addEventListener("click", train);
  $("teach-stop").addEventListener("click", () => { state.stop = true; });
  $("teach-config").addEventListener("click", () => download("config"));
  $("teach-weights").addEventListener("click", () => download("weights"));
  setClasses();
  return { paste };
}
