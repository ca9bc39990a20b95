#!/usr/bin/env python3
"""train_kjv.py: trains webinfer's embedded default model, a small Llama, on
the King James Bible tokens that `go run ./scripts/kjv prepare` writes.

    python3 scripts/train_kjv.py DATA_DIR OUT_DIR [--steps N]

Needs PyTorch and a CUDA GPU (the project's H100 machine: see README). Writes
OUT_DIR/weights.bin (header + float32 tensors, named as in GGUF, for
`go run ./scripts/kjv export`) and OUT_DIR/train_log.json (the loss curve).

The model is exactly llama.cpp's "llama" graph, so the weights need no
permutation on export: RMSNorm, RoPE on adjacent pairs (x[2i], x[2i+1]) as
ggml's normal mode rotates them, grouped-query attention (query head h uses
key/value head h // (heads/kv_heads)), SwiGLU feed-forward, and an output
projection tied to the token embedding.
"""
import json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CFG = dict(vocab=4096, embd=256, blocks=4, heads=8, kv_heads=4, ff=640, ctx=512,
           rope_base=10000.0, eps=1e-5, dropout=0.2)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope(x, cos, sin):
    # x: (B, T, H, D); rotate adjacent pairs, as ggml's normal RoPE.
    x2 = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = x2[..., 0], x2[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1)
    return out.reshape(x.shape).type_as(x)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        e, h, kv = c["embd"], c["heads"], c["kv_heads"]
        hd = e // h
        self.h, self.kv, self.hd = h, kv, hd
        self.attn_norm = RMSNorm(e, c["eps"])
        self.wq = nn.Linear(e, h * hd, bias=False)
        self.wk = nn.Linear(e, kv * hd, bias=False)
        self.wv = nn.Linear(e, kv * hd, bias=False)
        self.wo = nn.Linear(h * hd, e, bias=False)
        self.ffn_norm = RMSNorm(e, c["eps"])
        self.w_gate = nn.Linear(e, c["ff"], bias=False)
        self.w_up = nn.Linear(e, c["ff"], bias=False)
        self.w_down = nn.Linear(c["ff"], e, bias=False)
        # Dropout only in training (llama.cpp has none): the Bible is about a
        # million tokens, which a 4M-parameter model otherwise memorises.
        self.p = c["dropout"]

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        n = self.attn_norm(x)
        q = self.wq(n).view(B, T, self.h, self.hd)
        k = self.wk(n).view(B, T, self.kv, self.hd)
        v = self.wv(n).view(B, T, self.kv, self.hd)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.h // self.kv
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        p = self.p if self.training else 0.0
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, dropout_p=p)
        x = x + F.dropout(self.wo(a.transpose(1, 2).reshape(B, T, -1)), p, self.training)
        n = self.ffn_norm(x)
        return x + F.dropout(self.w_down(F.silu(self.w_gate(n)) * self.w_up(n)), p, self.training)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok = nn.Embedding(c["vocab"], c["embd"])
        self.blocks = nn.ModuleList([Block(c) for _ in range(c["blocks"])])
        self.norm = RMSNorm(c["embd"], c["eps"])
        hd = c["embd"] // c["heads"]
        inv = c["rope_base"] ** (-torch.arange(0, hd, 2).float() / hd)
        ang = torch.arange(c["ctx"]).float()[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos()[None, :, None, :], persistent=False)
        self.register_buffer("sin", ang.sin()[None, :, None, :], persistent=False)
        self.apply(self._init)
        for b in self.blocks:  # scaled init of the residual projections
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * c["blocks"]))
            nn.init.normal_(b.w_down.weight, std=0.02 / math.sqrt(2 * c["blocks"]))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.tok(idx)
        cos, sin = self.cos[:, :T], self.sin[:, :T]
        for b in self.blocks:
            x = b(x, cos, sin)
        return self.norm(x) @ self.tok.weight.T  # tied output

    def gguf_tensors(self):
        """(name, float32 array) in GGUF names; PyTorch (out, in) shapes."""
        yield "token_embd.weight", self.tok.weight
        yield "output_norm.weight", self.norm.weight
        for i, b in enumerate(self.blocks):
            p = f"blk.{i}."
            yield p + "attn_norm.weight", b.attn_norm.weight
            yield p + "attn_q.weight", b.wq.weight
            yield p + "attn_k.weight", b.wk.weight
            yield p + "attn_v.weight", b.wv.weight
            yield p + "attn_output.weight", b.wo.weight
            yield p + "ffn_norm.weight", b.ffn_norm.weight
            yield p + "ffn_gate.weight", b.w_gate.weight
            yield p + "ffn_up.weight", b.w_up.weight
            yield p + "ffn_down.weight", b.w_down.weight


def main():
    data, out = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 4000
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1)
    np.random.seed(1)
    dev = "cuda"
    train = torch.from_numpy(np.fromfile(os.path.join(data, "train.bin"), dtype=np.uint16).astype(np.int64)).to(dev)
    val = torch.from_numpy(np.fromfile(os.path.join(data, "val.bin"), dtype=np.uint16).astype(np.int64)).to(dev)
    c = dict(CFG)
    model = Llama(c).to(dev)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"params {nparams/1e6:.2f}M, train {len(train)} tokens, val {len(val)}", flush=True)
    B, T = 32, c["ctx"]
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.1)
    warm, lr_max, lr_min = 200, 1.5e-3, 1e-4
    gen = torch.Generator(device=dev).manual_seed(1)

    def batch(src):
        ix = torch.randint(0, len(src) - T - 1, (B,), device=dev, generator=gen)
        x = torch.stack([src[i:i + T] for i in ix])
        y = torch.stack([src[i + 1:i + T + 1] for i in ix])
        return x, y

    @torch.no_grad()
    def evaluate():
        model.eval()
        losses = []
        for i in range(0, len(val) - T - 1, T):
            x = val[i:i + T][None]
            y = val[i + 1:i + T + 1][None]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(x)
            losses.append(F.cross_entropy(logits.float().view(-1, c["vocab"]), y.view(-1)).item())
        model.train()
        return sum(losses) / len(losses)

    log = {"config": c, "params": nparams, "steps": [], "train_loss": [], "val_loss": []}
    t0 = time.time()
    best, best_state = float("inf"), None
    for step in range(1, steps + 1):
        lr = lr_max * step / warm if step < warm else lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * (step - warm) / (steps - warm)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch(train)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, c["vocab"]), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps:
            vl = evaluate()
            log["steps"].append(step)
            log["train_loss"].append(loss.item())
            log["val_loss"].append(vl)
            print(f"step {step} lr {lr:.2e} train {loss.item():.3f} val {vl:.3f} ppl {math.exp(vl):.1f} ({time.time()-t0:.0f}s)", flush=True)
            if vl < best:
                best = vl
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    log["best_val_loss"] = best
    log["best_val_ppl"] = math.exp(best)
    log["seconds"] = time.time() - t0

    # weights.bin: u64 header length, JSON header, float32 tensors.
    tensors, blobs, off = [], [], 0
    for name, t in model.gguf_tensors():
        a = t.detach().float().cpu().numpy().astype("<f4")
        tensors.append({"name": name, "shape": list(a.shape), "offset": off})
        blobs.append(a.tobytes())
        off += a.nbytes
    header = json.dumps({"config": {"Vocab": c["vocab"], "Embd": c["embd"], "Blocks": c["blocks"], "Heads": c["heads"],
                                    "KVHeads": c["kv_heads"], "FF": c["ff"], "Ctx": c["ctx"], "RopeBase": c["rope_base"],
                                    "Eps": c["eps"], "Steps": steps}, "tensors": tensors}).encode()
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for b in blobs:
            f.write(b)
    with open(os.path.join(out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(f"best val loss {best:.3f} (ppl {math.exp(best):.1f}); wrote {out}/weights.bin", flush=True)


if __name__ == "__main__":
    main()
