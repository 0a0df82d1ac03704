// The engine runs here, off the main thread. Requests are handled one at a
// time; a lost GPU device is detected and the engine re-created once. A failed
// start is not cached: the next request tries again (the page also replaces a
// worker whose start failed).
import init, { WebEngine } from "./pkg/vitrine.js";

// GPU buffers the engine has created and not destroyed (the memory checks read it): counted
// at the WebGPU API, as wgpu's web backend keeps no count of its own.
const gpuBuffers = { created: 0, destroyed: 0, live: new WeakSet() };
if (globalThis.GPUDevice && globalThis.GPUBuffer) {
  const create = GPUDevice.prototype.createBuffer;
  GPUDevice.prototype.createBuffer = function (desc) {
    const b = create.call(this, desc);
    gpuBuffers.created += 1;
    gpuBuffers.live.add(b);
    return b;
  };
  const destroy = GPUBuffer.prototype.destroy;
  GPUBuffer.prototype.destroy = function () {
    if (gpuBuffers.live.delete(this)) gpuBuffers.destroyed += 1;
    return destroy.call(this);
  };
}

let ready = null;
let engine = null;
let custom = null; // { config, weights } of a user model, to reload after a device loss

// The weights' precision on the GPU (setPrecision), re-applied to a re-created engine.
let precision = "f32";
// The matmul kernel family (setMatmul), likewise.
let matmul = "auto";

async function ensure() {
  if (!ready) ready = init().catch((err) => { ready = null; throw err; });
  await ready;
  if (!engine) {
    engine = await WebEngine.create();
    if (custom) engine.loadModel(custom.config, custom.weights);
    else engine.loadDefault();
    if (precision !== "f32") engine.setPrecision(precision);
    if (matmul !== "auto") engine.setMatmul(matmul);
  }
  return engine;
}

async function handle(msg) {
  const e = await ensure();
  switch (msg.type) {
    case "init":
      return { adapter: JSON.parse(e.adapterInfo()), model: JSON.parse(e.modelInfo()) };
    case "classify":
      return JSON.parse(await e.classify(msg.bytes, 5, msg.name ?? null));
    case "classifyRgba":
      return JSON.parse(await e.classifyRgba(msg.data, msg.width, msg.height, 5));
    case "profileOps": // GPU time per op kind for one image, each op timed alone
      return JSON.parse(await e.profileOps(msg.bytes));
    case "classifyMany":
      return JSON.parse(await e.classifyMany(msg.images, 5));
    case "attention": // PNG bytes of the image with an attention map over it
      return msg.bytes
        ? await e.attentionMap(msg.bytes, msg.which, msg.name ?? null)
        : await e.attentionMapRgba(msg.data, msg.width, msg.height, msg.which);
    case "startTraining": // "teach your own classes": a run from the loaded model
      return JSON.parse(e.startTraining(msg.options));
    case "addExample":
      return JSON.parse(msg.bytes
        ? e.addExample(msg.class, msg.bytes, msg.name ?? null)
        : e.addExampleRgba(msg.class, msg.data, msg.width, msg.height));
    case "trainStep":
      return JSON.parse(await e.trainStep());
    case "trainingCurves":
      return e.trainingCurves();
    case "trainEpoch":
      return JSON.parse(await e.trainEpoch());
    case "useTrained": {
      const info = JSON.parse(await e.useTrained());
      // What a re-created engine reloads after a lost device: the trained model.
      const [config, weights] = await e.exportModel();
      custom = { config, weights };
      return info;
    }
    case "exportModel": {
      const [config, weights] = await e.exportModel();
      return { config, weights };
    }
    case "destroyDevice": // test hook: as if the GPU device were lost
      e.destroyDevice();
      return null;
    case "memory":
      return { wasm: WebEngine.wasmMemoryBytes(), gpuBuffers: gpuBuffers.created - gpuBuffers.destroyed, gpuBuffersCreated: gpuBuffers.created };
    case "precision": // "f16": matmul weights stored as halves on the GPU; "f32": exact
      e.setPrecision(msg.precision);
      precision = msg.precision; // kept for an engine re-created after a lost device
      return null;
    case "matmul": // "register", "tiled" or "auto" (the adapter's rule)
      e.setMatmul(msg.kernel);
      matmul = msg.kernel; // kept for an engine re-created after a lost device
      return null;
    case "exitThresholds":
      e.setExitThresholds(new Float32Array(msg.thresholds));
      return null;
    case "load": {
      const info = JSON.parse(e.loadModel(msg.config, msg.weights));
      custom = { config: msg.config, weights: msg.weights };
      return info;
    }
    case "default":
      custom = null;
      return JSON.parse(e.loadDefault());
    default:
      throw new Error(`unknown request ${msg.type}`);
  }
}

// A reply that cannot be cloned must still answer its request, or the page would wait forever.
function reply(msg) {
  try {
    self.postMessage(msg);
  } catch (err) {
    self.postMessage({ id: msg.id, ok: false, error: String(err?.message ?? err) });
  }
}

const lost = (m) => /device (is |was )?lost|lost device|device (is |was )?destroyed|destroyed device/i.test(m);
// A training run lives in the engine: a lost device ends it (retrying cannot bring it back).
const training = new Set(["addExample", "trainStep", "trainEpoch", "useTrained", "exportModel"]);
let chain = Promise.resolve();
self.onmessage = (ev) => {
  const msg = ev.data;
  chain = chain.then(async () => {
    try {
      let result;
      let recovered = null;
      try {
        result = await handle(msg);
      } catch (err) {
        if (!lost(String(err?.message ?? err))) throw err;
        engine = null; // the GPU device was lost: make a new one and retry once
        if (training.has(msg.type)) throw new Error("The GPU device was lost and the training run with it; the engine was re-created: start the training again");
        result = await handle(msg);
        recovered = "The GPU device was lost; the engine was re-created and the request completed";
      }
      reply({ id: msg.id, ok: true, result, recovered });
    } catch (err) {
      reply({ id: msg.id, ok: false, error: String(err?.message ?? err) });
    }
  });
};
// A request that cannot be read has no id to answer: the page treats this as a failed worker.
self.onmessageerror = () => self.postMessage({ fatal: "The engine's worker failed: a request could not be read" });
