"""GPU reference for `memdiff bench train|sample --device wgpu`: ../shared/bench/torch_ref.py's
U-Net, training step and ancestral sampler moved to CUDA (the same loops, synchronised around
each timed step). torch_ref.py must be importable (same folder or PYTHONPATH).

  python3 torch_cuda.py train PX BATCH STEPS WARMUP
  python3 torch_cuda.py sample PX N STEPS
"""
import json, math, sys, time
import torch
import torch_ref as R

def train(px, batch, steps, warmup, compile_=False):
    torch.manual_seed(0)
    dev = "cuda"
    model = R.make_model(torch, px, 64).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, eps=1e-8)
    _, _, ab = R.linear_schedule(torch, 1000)
    sa, s1 = ab.sqrt().float().to(dev), (1 - ab).sqrt().float().to(dev)
    x0 = ((0.5 + 0.1 * torch.randn(batch, 1, px, px)) * 2 - 1).to(dev)
    times = []
    for i in range(warmup + steps):
        torch.cuda.synchronize(); t0 = time.perf_counter()
        t = torch.randint(1, 1001, (batch,), device=dev)
        eps = torch.randn_like(x0)
        xt = sa[t].view(-1, 1, 1, 1) * x0 + s1[t].view(-1, 1, 1, 1) * eps
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(xt, t), eps)
        loss.backward(); opt.step()
        l = loss.item()
        torch.cuda.synchronize(); dt = time.perf_counter() - t0
        if i >= warmup: times.append(dt)
    times.sort(); med = times[len(times) // 2]
    print(json.dumps({"what": "torch-cuda train", "px": px, "batch": batch, "s_per_step": round(med, 5),
                      "img_per_s": round(batch / med, 1), "loss": l, "torch": torch.__version__}), flush=True)

def sample(px, n, s):
    torch.manual_seed(0)
    dev = "cuda"
    model = R.make_model(torch, px, 64).to(dev).eval()
    beta, alpha, ab = R.linear_schedule(torch, s)
    with torch.inference_mode():
        model(torch.randn(n, 1, px, px, device=dev), torch.full((n,), s, dtype=torch.long, device=dev))
        torch.cuda.synchronize(); t0 = time.perf_counter()
        x = torch.randn(n, 1, px, px, device=dev)
        for t in range(s, 0, -1):
            e = model(x, torch.full((n,), t, dtype=torch.long, device=dev))
            x = (x - float(beta[t] / math.sqrt(1 - float(ab[t]))) * e) / math.sqrt(float(alpha[t]))
            if t > 1: x = x + math.sqrt(float(beta[t])) * torch.randn_like(x)
        img = ((x.clamp(-1, 1) + 1) / 2).cpu()
        sec = time.perf_counter() - t0
    print(json.dumps({"what": "torch-cuda sample", "px": px, "n": n, "steps": s, "seconds": round(sec, 4),
                      "s_per_net_eval": round(sec / s, 6)}), flush=True)

if __name__ == "__main__":
    cmd = sys.argv[1]
    a = [int(v) for v in sys.argv[2:]]
    train(*a) if cmd == "train" else sample(*a)
