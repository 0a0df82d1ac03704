//! The browser API (feature `web`, wasm32 + wasm-bindgen): the same engine,
//! kernels and scheduler as the CLI, behind a small async JS interface.
//!
//! ```js
//! import init, { WebEngine } from "./pkg/vitrine.js";
//! await init();
//! const engine = await WebEngine.create();          // WebGPU adapter + device
//! engine.loadDefault();                              // or engine.loadModel(configText, weightsBytes)
//! const r = JSON.parse(await engine.classify(bytes, 5, "cat.jpg"));   // encoded image bytes (+ a name for errors)
//! // r = {top_k: [{index, label, prob}], logits: [...], timings: {preprocess_ms, compile_ms, gpu_ms, readback_ms, total_ms}}
//! //   (+ kept_tokens: [[patch indices] per pruning stage] for DynamicViT;
//! //    + exit, exit_logits, exit_gflops, exit_costs for DVT's early-exit cascades)
//! const rows = JSON.parse(await engine.classifyMany([bytesA, bytesB], 5));   // one batch, one object per image
//! engine.setExitThresholds([0.8, 0.7]);             // DVT: thresholds of every exit but the last
//! // Fine-tuning the loaded model on new classes, on the GPU (see `startTraining`):
//! engine.startTraining({ classes: ["cat", "dog"], epochs: 5, batchSize: 8 });
//! engine.addExample(0, catBytes, "cat1.jpg");         // or addExampleRgba(class, rgba, width, height)
//! const step = JSON.parse(await engine.trainStep()); // {loss, accuracy, epoch, step, steps_per_epoch, lr, ...}
//! const epoch = JSON.parse(await engine.trainEpoch()); // to the epoch's end: + images_per_s
//! await engine.useTrained();                         // classify with the trained model
//! const [configText, weightsBytes] = await engine.exportModel();   // the hub layout: timm and the CLI load it
//! // A lost GPU device makes every request fail with "the GPU device was lost (...)": create a
//! // new WebEngine (the demo's worker does, once per request). Test hooks: destroyDevice(),
//! // WebEngine.wasmMemoryBytes().
//! ```
//! Errors reject with a JS `Error` whose message is the CLI's error line.

use crate::classify::Classifier;
use crate::engine::Engine;
use crate::models::{default_model, Model};
use crate::preprocess::{decode, eval_image, normalize, to_channels, transform, Image8};
use crate::train::live::{hub_bytes, LiveTrainer};
use crate::weights::Weights;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

fn js(e: crate::Error) -> JsError {
    JsError::new(&e.to_string().replace('\n', " "))
}

/// `performance.now()` in a window or a worker.
fn now_ms() -> f64 {
    let perf = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
    perf.and_then(|p| {
        let now = js_sys::Reflect::get(&p, &"now".into()).ok()?;
        let f: js_sys::Function = now.dyn_into().ok()?;
        f.call0(&p).ok()?.as_f64()
    })
    .unwrap_or_else(js_sys::Date::now)
}

struct Inner {
    engine: Engine,
    clf: Option<Classifier>,
    /// A training run ("teach your own classes"), started from the loaded model.
    trainer: Option<LiveTrainer>,
    /// The weights' precision on the GPU for every model loaded (`setPrecision`).
    precision: crate::Precision,
}

/// A GPU engine with at most one loaded model.
#[wasm_bindgen]
pub struct WebEngine {
    inner: Rc<RefCell<Inner>>,
}

fn busy() -> JsError {
    JsError::new("the engine is busy with another request; await it first")
}

#[wasm_bindgen]
impl WebEngine {
    /// Opens the browser's WebGPU adapter and a device.
    pub async fn create() -> Result<WebEngine, JsError> {
        console_error_panic_hook::set_once();
        let engine = Engine::new().await.map_err(js)?;
        Ok(WebEngine { inner: Rc::new(RefCell::new(Inner { engine, clf: None, trainer: None, precision: crate::Precision::F32 })) })
    }

    /// The adapter as JSON: name, backend, driver, device type, features, limits.
    #[wasm_bindgen(js_name = adapterInfo)]
    pub fn adapter_info(&self) -> Result<String, JsError> {
        let inner = self.inner.try_borrow().map_err(|_| busy())?;
        let ctx = &inner.engine.ctx;
        let v = serde_json::json!({
            "adapter": ctx.adapter(),
            "max_storage_binding_bytes": ctx.max_storage_binding(),
            "matmul": ctx.caps().matmul.name(),
        });
        Ok(v.to_string())
    }

    /// Loads the built-in model; returns its summary (see `modelInfo`).
    #[wasm_bindgen(js_name = loadDefault)]
    pub fn load_default(&self) -> Result<String, JsError> {
        self.set_model(default_model().map_err(js)?)
    }

    /// Loads a timm model from `config.json` text (optional: without it the
    /// architecture is inferred from the tensor shapes) and `model.safetensors` bytes.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&self, config_json: Option<String>, weights: &[u8]) -> Result<String, JsError> {
        let w = Weights::from_bytes(weights, "model.safetensors").map_err(js)?;
        let model = Model::from_parts(config_json.as_deref(), w, None, "model.safetensors").map_err(js)?;
        self.set_model(model)
    }

    fn set_model(&self, model: Model) -> Result<String, JsError> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let info = model_info(&model);
        let mut clf = Classifier::new(model);
        clf.set_precision(inner.precision);
        clf.check_fits(&inner.engine).map_err(js)?;
        inner.clf = Some(clf);
        Ok(info)
    }

    /// The loaded model as JSON: architecture, classes, input size, parameters.
    #[wasm_bindgen(js_name = modelInfo)]
    pub fn model_info(&self) -> Result<String, JsError> {
        let inner = self.inner.try_borrow().map_err(|_| busy())?;
        let clf = inner.clf.as_ref().ok_or_else(|| JsError::new("no model loaded"))?;
        Ok(model_info(&clf.model))
    }

    /// Classifies encoded image bytes (PNG, JPEG, GIF, BMP, WebP, TIFF);
    /// `name` (e.g. the file name) is used in error messages.
    pub async fn classify(&self, bytes: Vec<u8>, top_k: usize, name: Option<String>) -> Result<String, JsError> {
        let t0 = now_ms();
        let img = decode(&bytes, name.as_deref().unwrap_or("image"), self.channels()?).map_err(js)?;
        run(self.inner.clone(), img, top_k, t0).await
    }

    /// Where the GPU time of one image (batch 1) goes: every op run in its own timed pass
    /// (timestamp queries), summed by op kind, slowest first, as JSON
    /// `[{kind, ms, dispatches}]`. Fails where the adapter has no timestamp queries.
    #[wasm_bindgen(js_name = profileOps)]
    pub async fn profile_ops(&self, bytes: Vec<u8>) -> Result<String, JsError> {
        let img = decode(&bytes, "image", self.channels()?).map_err(js)?;
        profile_ops(self.inner.clone(), img).await
    }

    /// Classifies several encoded images as one batch (DVT: images that stop at different
    /// exits): a JSON array with one object per image, in order, each as `classify` returns.
    #[wasm_bindgen(js_name = classifyMany)]
    pub async fn classify_many(&self, images: Vec<js_sys::Uint8Array>, top_k: usize) -> Result<String, JsError> {
        let t0 = now_ms();
        let channels = self.channels()?;
        if images.is_empty() {
            return Err(JsError::new("classifyMany needs at least one image"));
        }
        let mut decoded = Vec::with_capacity(images.len());
        for (i, bytes) in images.iter().enumerate() {
            decoded.push(decode(&bytes.to_vec(), &format!("image {i}"), channels).map_err(js)?);
        }
        let rows = run_batch(self.inner.clone(), decoded, top_k, t0).await?;
        Ok(serde_json::Value::Array(rows).to_string())
    }

    /// Test hook: destroys the GPU device (`GPUDevice.destroy()`), as a lost device would
    /// end it; the next request fails with a device-lost error (the demo's worker then
    /// re-creates the engine).
    #[wasm_bindgen(js_name = destroyDevice)]
    pub fn destroy_device(&self) -> Result<(), JsError> {
        let inner = self.inner.try_borrow().map_err(|_| busy())?;
        inner.engine.ctx.device.destroy();
        Ok(())
    }

    /// Bytes of this module's wasm memory (for leak checks: it only grows).
    #[wasm_bindgen(js_name = wasmMemoryBytes)]
    pub fn wasm_memory_bytes() -> f64 {
        wasm_bindgen::memory()
            .dyn_into::<js_sys::WebAssembly::Memory>()
            .ok()
            .and_then(|m| m.buffer().dyn_into::<js_sys::ArrayBuffer>().ok())
            .map_or(0.0, |b| b.byte_length() as f64)
    }

    /// Stores the loaded model's (and later ones') matmul weights as `"f16"`
    /// (half their GPU memory, so larger models fit the per-binding limit;
    /// arithmetic stays f32, logits within about 1e-2 of f32) or `"f32"` (the
    /// default, exact). Needs no shader-f16: halves are widened on load. Where the
    /// browser's WebGPU has shader-f16, the activations between matmuls are f16 too
    /// (`Classifier::graph_for`).
    #[wasm_bindgen(js_name = setPrecision)]
    pub fn set_precision(&self, precision: String) -> Result<(), JsError> {
        let p: crate::Precision = precision.parse().map_err(|e: String| JsError::new(&e))?;
        let mut inner = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let previous = inner.precision;
        inner.precision = p;
        let Inner { engine, clf, .. } = &mut *inner;
        if let Some(clf) = clf.as_mut() {
            clf.set_precision(p);
            if let Err(e) = clf.check_fits(engine) {
                clf.set_precision(previous);
                inner.precision = previous;
                return Err(js(e));
            }
        }
        Ok(())
    }

    /// Forces a matmul kernel family, `"register"` or `"tiled"` (`"subgroup"` is refused: the web backend has no subgroups), for this engine's models, or
    /// `"auto"`: the adapter's rule (the register kernel on a CPU adapter such as
    /// SwiftShader, the tiled one on a GPU). Answers are the same with each; speed differs.
    #[wasm_bindgen(js_name = setMatmul)]
    pub fn set_matmul(&self, kernel: String) -> Result<(), JsError> {
        use crate::MatmulKind;
        let kind = match kernel.as_str() {
            "auto" => None,
            other => Some(
                MatmulKind::parse(other)
                    .ok_or_else(|| JsError::new(&format!("unknown matmul kernel {other:?}: auto, register, tiled or subgroup")))?,
            ),
        };
        let mut inner = self.inner.try_borrow_mut().map_err(|_| busy())?;
        inner.engine.force_matmul(kind).map_err(js)?;
        if let Some(clf) = inner.clf.as_mut() {
            clf.forget_executables();
        }
        Ok(())
    }

    /// An early-exit model's (DVT) max-softmax thresholds, one per exit but the last
    /// (`Infinity`: never exit there); they apply from the next request.
    #[wasm_bindgen(js_name = setExitThresholds)]
    pub fn set_exit_thresholds(&self, thresholds: Vec<f32>) -> Result<(), JsError> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let clf = inner.clf.as_mut().ok_or_else(|| JsError::new("no model loaded"))?;
        clf.model.config.arch.set_exit_thresholds(&thresholds).map_err(js)
    }

    /// Classifies RGBA pixels (an `ImageData`'s `data`, `width` x `height`).
    #[wasm_bindgen(js_name = classifyRgba)]
    pub async fn classify_rgba(&self, rgba: Vec<u8>, width: usize, height: usize, top_k: usize) -> Result<String, JsError> {
        let t0 = now_ms();
        let img = rgba_image(rgba, width, height, self.channels()?)?;
        run(self.inner.clone(), img, top_k, t0).await
    }

    /// An attention map of encoded image bytes as PNG bytes: the model's view of the image
    /// (its eval crop, enlarged to at least 224 pixels) with the map over it. `which`:
    /// "rollout" (attention rollout) or "last" (the last block's class-token attention). ViT
    /// and DeiT models; for others the error says why there is no map.
    #[wasm_bindgen(js_name = attentionMap)]
    pub async fn attention_map(&self, bytes: Vec<u8>, which: String, name: Option<String>) -> Result<Vec<u8>, JsError> {
        let img = decode(&bytes, name.as_deref().unwrap_or("image"), self.channels()?).map_err(js)?;
        attention_png(self.inner.clone(), img, &which).await
    }

    /// [`WebEngine::attention_map`] of RGBA pixels (an `ImageData`'s `data`).
    #[wasm_bindgen(js_name = attentionMapRgba)]
    pub async fn attention_map_rgba(&self, rgba: Vec<u8>, width: usize, height: usize, which: String) -> Result<Vec<u8>, JsError> {
        let img = rgba_image(rgba, width, height, self.channels()?)?;
        attention_png(self.inner.clone(), img, &which).await
    }
}

#[wasm_bindgen]
impl WebEngine {
    /// Starts a training run from the loaded model (replacing any earlier run): its head is
    /// replaced for `classes` (timm's init) and the examples added next train it. Options
    /// (an object, or its JSON text): `classes` (2 to 1000 names, required), `epochs` (10), `opt` ("adamw", or
    /// "sgd" (Nesterov) / "momentum" as the CLI's `--opt`), `lr` (1e-3 for AdamW, 0.01 else),
    /// `batchSize` (8), `weightDecay` (0.05), `smoothing` (0.1), `warmupEpochs` (0),
    /// `freezeBackbone` (false), `clipGrad` (none: the global L2 norm gradients are clipped
    /// to), `augment` (true: the CLI's random resized crop and flip),
    /// `seed` (42). A model whose training graph does not fit the adapter's limits at this
    /// batch size is refused here, before anything is allocated. Returns
    /// `{classes, parameters, trainable}`.
    #[wasm_bindgen(js_name = startTraining)]
    pub fn start_training(&self, options: JsValue) -> Result<String, JsError> {
        let text = match options.as_string() {
            Some(t) => t,
            None => js_sys::JSON::stringify(&options)
                .ok()
                .and_then(|s| s.as_string())
                .ok_or_else(|| JsError::new("training options: not an object"))?,
        };
        let mut inner = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let model = inner.clf.as_ref().ok_or_else(|| JsError::new("no model loaded"))?.model.clone();
        let (classes, opts) = train_options(&text)?;
        let trainer = LiveTrainer::new(model, classes, opts).map_err(js)?;
        let caps = inner.engine.caps();
        let (params, trainable) = trainer.check_fits(&caps).map_err(js)?;
        let info = serde_json::json!({ "classes": trainer.classes(), "parameters": params, "trainable": trainable });
        inner.trainer = Some(trainer);
        Ok(info.to_string())
    }

    /// Adds an example (encoded image bytes) of class `class` to the run; returns the
    /// examples per class (JSON array).
    #[wasm_bindgen(js_name = addExample)]
    pub fn add_example(&self, class: usize, bytes: Vec<u8>, name: Option<String>) -> Result<String, JsError> {
        let img = decode(&bytes, name.as_deref().unwrap_or("image"), self.channels()?).map_err(js)?;
        self.add_image(class, img)
    }

    /// [`WebEngine::add_example`] for RGBA pixels (an `ImageData`'s `data`).
    #[wasm_bindgen(js_name = addExampleRgba)]
    pub fn add_example_rgba(&self, class: usize, rgba: Vec<u8>, width: usize, height: usize) -> Result<String, JsError> {
        self.add_image(class, rgba_image(rgba, width, height, self.channels()?)?)
    }

    /// One optimizer step (forward, loss, backward, AdamW, all on the GPU) on the next batch;
    /// returns `{loss, accuracy, epoch_loss, epoch_accuracy, epoch, step, steps_per_epoch,
    /// global_step, lr, epoch_done, ms}` (loss and accuracy of this batch; epochs 0-based).
    #[wasm_bindgen(js_name = trainStep)]
    #[allow(clippy::await_holding_refcell_ref)] // a request meanwhile is refused as busy
    pub async fn train_step(&self) -> Result<String, JsError> {
        let t0 = now_ms();
        let mut guard = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let Inner { engine, trainer, .. } = &mut *guard;
        let trainer = trainer.as_mut().ok_or_else(|| JsError::new("no training run: call startTraining first"))?;
        let report = trainer.step(engine).await.map_err(|e| js(engine.ctx.explain_error(e)))?;
        let mut v = serde_json::to_value(&report).map_err(|e| JsError::new(&e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("ms".into(), (now_ms() - t0).into());
        }
        Ok(v.to_string())
    }

    /// Steps to the end of the current epoch; returns the last step's report (see
    /// `trainStep`; `epoch_loss` and `epoch_accuracy` then cover the whole epoch) with `ms`
    /// and `images_per_s` for the epoch.
    #[wasm_bindgen(js_name = trainEpoch)]
    pub async fn train_epoch(&self) -> Result<String, JsError> {
        let t0 = now_ms();
        let mut steps = 0usize;
        loop {
            let r: serde_json::Value = serde_json::from_str(&self.train_step().await?).map_err(|e| JsError::new(&e.to_string()))?;
            steps += 1;
            if r.get("epoch_done").and_then(serde_json::Value::as_bool) != Some(false) {
                let mut r = r;
                let ms = now_ms() - t0;
                let batch = {
                    let inner = self.inner.try_borrow().map_err(|_| busy())?;
                    inner.trainer.as_ref().map_or(0, LiveTrainer::batch_size)
                };
                if let Some(o) = r.as_object_mut() {
                    o.insert("ms".into(), ms.into());
                    o.insert("images_per_s".into(), ((steps * batch) as f64 / (ms / 1000.0).max(1e-9)).into());
                }
                return Ok(r.to_string());
            }
        }
    }

    /// The run's curves as an SVG document, drawn by the code behind `vitrine train`'s
    /// `curves.svg` (loss, accuracy and learning rate per finished epoch).
    #[wasm_bindgen(js_name = trainingCurves)]
    pub fn training_curves(&self) -> Result<String, JsError> {
        let inner = self.inner.try_borrow().map_err(|_| busy())?;
        let trainer = inner.trainer.as_ref().ok_or_else(|| JsError::new("no training run: call startTraining first"))?;
        trainer.curves_svg().map_err(js)
    }

    /// Classifies with the run's current weights from now on (the run goes on); returns the
    /// model's summary (see `modelInfo`).
    #[wasm_bindgen(js_name = useTrained)]
    pub async fn use_trained(&self) -> Result<String, JsError> {
        let model = self.trained().await?;
        self.set_model(model)
    }

    /// The run's current model in the hub layout: `[config.json text, model.safetensors
    /// bytes]` (timm and `vitrine classify --model` load them).
    #[wasm_bindgen(js_name = exportModel)]
    pub async fn export_model(&self) -> Result<js_sys::Array, JsError> {
        let (config, weights) = hub_bytes(&self.trained().await?).map_err(js)?;
        let out = js_sys::Array::new();
        out.push(&JsValue::from_str(&config));
        out.push(&js_sys::Uint8Array::from(weights.as_slice()));
        Ok(out)
    }
}

/// The `startTraining` options: class names and the run's settings (see there).
fn train_options(text: &str) -> Result<(Vec<String>, crate::train::options::TrainOptions), JsError> {
    use serde_json::Value;
    let bad = |m: String| JsError::new(&format!("training options: {m}"));
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let classes: Vec<String> = v
        .get("classes")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`classes` (an array of names) is required".into()))?
        .iter()
        .map(|c| {
            c.as_str()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad(format!("class name {c} is not a non-empty string")))
        })
        .collect::<Result<_, _>>()?;
    let num = |k: &str, default: f64, lo: f64, hi: f64| -> Result<f64, JsError> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x
                .as_f64()
                .filter(|n| n.is_finite() && (lo..=hi).contains(n))
                .ok_or_else(|| bad(format!("`{k}` = {x} is out of range ({lo} to {hi})"))),
        }
    };
    let flag = |k: &str, default: bool| -> Result<bool, JsError> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x.as_bool().ok_or_else(|| bad(format!("`{k}` = {x} is not true or false"))),
        }
    };
    let mut o = crate::train::options::TrainOptions::new(Default::default(), Default::default());
    o.epochs = num("epochs", 10.0, 1.0, 1000.0)? as usize;
    o.batch_size = num("batchSize", 8.0, 1.0, 512.0)? as usize;
    o.sched.lr = num("lr", 1e-3, 1e-8, 1.0)?;
    o.sched.epochs = o.epochs;
    o.sched.warmup_epochs = num("warmupEpochs", 0.0, 0.0, 1000.0)?;
    o.weight_decay = num("weightDecay", 0.05, 0.0, 10.0)?;
    o.smoothing = num("smoothing", 0.1, 0.0, 0.99)?;
    o.seed = num("seed", 42.0, 0.0, 9.0e15)? as u64;
    o.freeze_backbone = flag("freezeBackbone", false)?;
    o.clip_grad = match v.get("clipGrad") {
        None | Some(Value::Null) => None,
        Some(_) => Some(num("clipGrad", 1.0, 1e-12, 1e12)?),
    };
    if let Some(name) = v.get("opt").filter(|x| !x.is_null()) {
        let name = name.as_str().ok_or_else(|| bad(format!("`opt` = {name} is not a string")))?;
        o.opt = crate::train::options::OptName::parse(name).map_err(js)?;
        if v.get("lr").is_none_or(Value::is_null) && o.opt != crate::train::options::OptName::AdamW {
            o.sched.lr = 0.01; // the CLI's default for sgd and momentum
        }
    }
    if !flag("augment", true)? {
        o.augment = crate::train::augment::Augment::none();
    }
    Ok((classes, o))
}

impl WebEngine {
    /// Adds a decoded image to the training run.
    fn add_image(&self, class: usize, img: Image8) -> Result<String, JsError> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let trainer = inner.trainer.as_mut().ok_or_else(|| JsError::new("no training run: call startTraining first"))?;
        trainer.add_example(class, img).map_err(js)?;
        Ok(serde_json::json!(trainer.counts()).to_string())
    }

    /// The training run's current model.
    #[allow(clippy::await_holding_refcell_ref)] // a request meanwhile is refused as busy
    async fn trained(&self) -> Result<Model, JsError> {
        let inner = self.inner.try_borrow().map_err(|_| busy())?;
        let trainer = inner.trainer.as_ref().ok_or_else(|| JsError::new("no training run: call startTraining first"))?;
        trainer.model(&inner.engine).await.map_err(js)
    }

    /// Input channels of the loaded model.
    fn channels(&self) -> Result<usize, JsError> {
        let i = self.inner.try_borrow().map_err(|_| busy())?;
        Ok(i.clf.as_ref().ok_or_else(|| JsError::new("no model loaded"))?.model.config.data.input_size[0])
    }
}

/// RGBA pixels (`width` x `height`, checked) as an image of `channels` channels.
fn rgba_image(rgba: Vec<u8>, width: usize, height: usize, channels: usize) -> Result<Image8, JsError> {
    let want = width.checked_mul(height).and_then(|p| p.checked_mul(4));
    if width == 0 || height == 0 || want != Some(rgba.len()) {
        return Err(JsError::new(&format!("RGBA data has {} bytes, expected {width} x {height} x 4", rgba.len())));
    }
    let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    Ok(to_channels(Image8 { width, height, channels: 3, data: rgb }, channels))
}

/// The attention map `which` of a decoded image as PNG bytes (see `attentionMap`).
// The engine is held across the GPU await on purpose: a second request meanwhile is refused
// as busy (`try_borrow_mut`), never interleaved.
#[allow(clippy::await_holding_refcell_ref)]
async fn attention_png(inner: Rc<RefCell<Inner>>, img: Image8, which: &str) -> Result<Vec<u8>, JsError> {
    let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
    let Inner { engine, clf, .. } = &mut *guard;
    let clf = clf.as_ref().ok_or_else(|| JsError::new("no model loaded"))?;
    let cfg = &clf.model.config.data;
    let shown = eval_image(&img, cfg).map_err(js)?;
    let maps = crate::explain::attention_maps(engine, &clf.model, &normalize(&shown, cfg)).await;
    let maps = maps.map_err(|e| js(engine.ctx.explain_error(e)))?;
    let map = match which {
        "rollout" => &maps.rollout,
        "last" => &maps.last_cls,
        other => return Err(JsError::new(&format!("attention map {other:?}: \"rollout\" or \"last\""))),
    };
    crate::explain::overlay_png(&shown, map, maps.grid).map_err(js)
}

fn model_info(m: &Model) -> String {
    let params: usize = m.weights.tensors.values().map(|(_, d)| d.len()).sum();
    serde_json::json!({
        "architecture": m.config.architecture,
        "num_classes": m.config.num_classes(),
        "input_size": m.config.data.input_size,
        "parameters": params,
        "labelled": m.config.labels.is_some(),
    })
    .to_string()
}

async fn run(inner: Rc<RefCell<Inner>>, img: Image8, top_k: usize, t0: f64) -> Result<String, JsError> {
    let mut rows = run_batch(inner, vec![img], top_k, t0).await?;
    Ok(rows.pop().unwrap_or_default().to_string())
}

/// `WebEngine::profile_ops` (the engine is held across the GPU awaits, as in `run_batch`).
#[allow(clippy::await_holding_refcell_ref)]
async fn profile_ops(inner: Rc<RefCell<Inner>>, img: Image8) -> Result<String, JsError> {
    let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
    let Inner { engine, clf, .. } = &mut *guard;
    let clf = clf.as_ref().ok_or_else(|| JsError::new("no model loaded"))?;
    if !engine.ctx.adapter().timestamps {
        return Err(JsError::new("this adapter has no timestamp queries, so no per-op profile"));
    }
    let cfg = &clf.model.config.data;
    let input = transform(&img, cfg).map_err(js)?;
    let g = clf.graph_for(engine, 1).map_err(js)?;
    let exe = engine.compile_with(&g, &clf.model.weights.data(), true).map_err(|e| js(engine.ctx.explain_error(e)))?;
    exe.run(&engine.ctx, &[&input]).await.map_err(js)?;
    let (_, ops) = exe.run_timed(&engine.ctx, &[&input]).await.map_err(js)?;
    let kinds = crate::gpu::by_op_kind(&ops.unwrap_or_default());
    let rows = kinds.into_iter().map(|(kind, ms, n)| serde_json::json!({ "kind": kind, "ms": ms, "dispatches": n }));
    Ok(serde_json::Value::Array(rows.collect()).to_string())
}

/// Classifies decoded images as one batch: one JSON object per image, in order.
// The engine is held across the GPU await on purpose: a second request meanwhile is refused
// as busy (`try_borrow_mut`), never interleaved.
#[allow(clippy::await_holding_refcell_ref)]
async fn run_batch(inner: Rc<RefCell<Inner>>, imgs: Vec<Image8>, top_k: usize, t0: f64) -> Result<Vec<serde_json::Value>, JsError> {
    let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
    let Inner { engine, clf, .. } = &mut *guard;
    let clf = clf.as_mut().ok_or_else(|| JsError::new("no model loaded"))?;
    let cfg = clf.model.config.data.clone();
    let mut input = Vec::new();
    for img in &imgs {
        input.extend(transform(img, &cfg).map_err(js)?);
    }
    let n = imgs.len().max(1);
    let t1 = now_ms();
    clf.prepare(engine, n).map_err(|e| js(engine.ctx.explain_error(e)))?;
    let t2 = now_ms();
    let staged = clf.outputs_staged(engine, &input, &now_ms).await;
    let (mut outs, gpu_ms, readback_ms) = staged.map_err(|e| js(engine.ctx.explain_error(e)))?;
    let logits = outs.pop().unwrap_or_default();
    let extras = clf.model.config.arch.explain(&outs, n);
    let t3 = now_ms();
    let k = top_k.clamp(1, clf.model.config.num_classes().max(1));
    let width = logits.len() / n;
    let timings = serde_json::json!({
        "preprocess_ms": t1 - t0,
        "compile_ms": t2 - t1,
        "gpu_ms": gpu_ms,
        "readback_ms": readback_ms,
        "total_ms": t3 - t0,
    });
    Ok(logits
        .chunks(width.max(1))
        .zip(extras)
        .map(|(row, extra)| {
            let mut v = serde_json::json!({ "top_k": clf.top_k(row, k), "logits": row, "timings": timings });
            if let Some(map) = v.as_object_mut() {
                map.extend(extra); // DynamicViT: kept_tokens per pruning stage; DVT: exit, exit_logits, exit_gflops
            }
            v
        })
        .collect())
}
