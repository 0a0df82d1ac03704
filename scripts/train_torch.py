#!/usr/bin/env python3
"""PyTorch/timm reference for vitrine's training recipe (run by hand, never in CI).

Trains timm's VisionTransformer on Fashion-MNIST (Debian's IDX files) with the
recipe `vitrine train` uses: AdamW with timm's weight-decay groups, timm's
CosineLRScheduler stepped per epoch (linear warmup from --warmup-lr), timm's
LabelSmoothingCrossEntropy, batch B with the last short batch dropped, and
augmentation = optional pad-and-crop + horizontal flip; eval on the test set
after each epoch. Prints one line per epoch and the final test accuracy.

  PYTHONPATH=/tmp/pyref python3 scripts/train_torch.py --epochs 20 --hflip 0.5

The built-in model's two runs (models/default/README.md):
  ... --epochs 40 --lr 2e-3 --hflip 0.5 --pad 1 --save torch40.safetensors
  ... --init torch40.safetensors --epochs 6 --lr 2e-4 --pad 0 --hflip 0.5 --seed 43
(`--init DIR` also takes a hub folder, e.g. vitrine's models/default.)
"""
import argparse, gzip, json, os, struct, time
import numpy as np
import torch, timm
from timm.loss import LabelSmoothingCrossEntropy
from timm.optim import param_groups_weight_decay
from timm.scheduler import CosineLRScheduler

p = argparse.ArgumentParser()
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--epochs", type=int, default=20)
p.add_argument("-b", "--batch-size", type=int, default=128)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--weight-decay", type=float, default=0.05)
p.add_argument("--warmup-epochs", type=int, default=1)
p.add_argument("--warmup-lr", type=float, default=1e-5)
p.add_argument("--smoothing", type=float, default=0.1)
p.add_argument("--hflip", type=float, default=0.5)
p.add_argument("--pad", type=int, default=0)
p.add_argument("--model-kwargs", default='{"img_size":28,"patch_size":7,"in_chans":1,"embed_dim":64,"depth":4,"num_heads":4,"mlp_ratio":2}')
p.add_argument("--seed", type=int, default=42)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--json", help="write per-epoch results here")
p.add_argument("--init", help="start from this hub folder's model.safetensors (a second stage) instead of timm's init")
p.add_argument("--save", help="write the final weights to this .safetensors file")
a = p.parse_args()
torch.manual_seed(a.seed)
np.random.seed(a.seed)
torch.set_num_threads(a.threads)

def idx(name):
    for n in (name, name + ".gz"):
        f = os.path.join(a.data, n)
        if os.path.exists(f):
            raw = (gzip.open if n.endswith(".gz") else open)(f, "rb").read()
            nd = raw[3]
            dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)
    raise SystemExit(f"missing {name}")

xtr, ytr = idx("train-images-idx3-ubyte"), idx("train-labels-idx1-ubyte")
xte, yte = idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte")
norm = lambda x: (torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1) - 0.5) / 0.5
Xtr, Ytr, Xte, Yte = norm(xtr), torch.from_numpy(ytr.astype(np.int64)), norm(xte), torch.from_numpy(yte.astype(np.int64))

kw = json.loads(a.model_kwargs)
model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, **kw)
if a.init:
    from safetensors.torch import load_file
    model.load_state_dict(load_file(os.path.join(a.init, "model.safetensors") if os.path.isdir(a.init) else a.init))
opt = torch.optim.AdamW(param_groups_weight_decay(model, a.weight_decay), lr=a.lr)
sched = CosineLRScheduler(opt, t_initial=a.epochs, lr_min=0.0, warmup_t=a.warmup_epochs, warmup_lr_init=a.warmup_lr)
crit = LabelSmoothingCrossEntropy(a.smoothing) if a.smoothing > 0 else torch.nn.CrossEntropyLoss()
B = a.batch_size
steps = len(Xtr) // B
hist = []
t_start = time.time()
for epoch in range(a.epochs):
    sched.step(epoch)
    model.train()
    perm = torch.randperm(len(Xtr))
    t0 = time.time()
    tot, correct = 0.0, 0
    for s in range(steps):
        ix = perm[s * B:(s + 1) * B]
        x, y = Xtr[ix].clone(), Ytr[ix]
        if a.pad:
            xp = torch.nn.functional.pad(x, (a.pad,) * 4, value=-1.0)  # zero pixels after normalisation
            dx = np.random.randint(0, 2 * a.pad + 1, B); dy = np.random.randint(0, 2 * a.pad + 1, B)
            x = torch.stack([xp[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28] for i in range(B)])
        if a.hflip > 0:
            flip = torch.rand(B) < a.hflip
            x[flip] = x[flip].flip(-1)
        out = model(x)
        loss = crit(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tot += loss.item() * B
        correct += (out.argmax(1) == y).sum().item()
    secs = time.time() - t0
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(Xte[i:i + 500]).argmax(1) for i in range(0, len(Xte), 500)])
    top1 = 100.0 * (pred == Yte).float().mean().item()
    rec = dict(epoch=epoch + 1, lr=opt.param_groups[0]["lr"], train_loss=tot / (steps * B), train_acc=100.0 * correct / (steps * B), top1=top1, secs=secs, images_per_s=steps * B / secs)
    hist.append(rec)
    print(json.dumps(rec), flush=True)
print(f"final test top1 {hist[-1]['top1']:.2f}% after {a.epochs} epochs, {time.time() - t_start:.0f} s")
if a.save:
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, a.save)
if a.json:
    json.dump(dict(args=vars(a), history=hist), open(a.json, "w"), indent=1)
