import sys, time, json, statistics as st, torch
root = sys.argv[1]; sys.path.insert(0, root)
from bench.codec import SETTINGS, build_codec
torch.set_num_threads(2)
shapes = {"attn.wq": (2048, 2048), "attn.wk": (512, 2048), "attn.wv": (512, 2048), "attn.wo": (2048, 2048),
          "ffn.w1": (5632, 2048), "ffn.w2": (2048, 5632), "ffn.w3": (5632, 2048), "n1": (2048,), "n2": (2048,)}
out = {}
for label in ("sparse c4096 k54 b2", "topk c64 k32 dct u8"):
    codec = build_codec(SETTINGS[label])
    g = torch.Generator().manual_seed(1)
    payloads = [codec.encode({n: 1e-3*torch.randn(s, generator=g) for n, s in shapes.items()})[0] for _ in range(16)]
    for mode in ("none", "per_peer"):
        codec.decode_batch(payloads, shapes, normalise=mode)
        ts = []
        for _ in range(7):
            t = time.perf_counter(); codec.decode_batch(payloads, shapes, normalise=mode); ts.append(time.perf_counter() - t)
        out[f"{label.split()[0]} {mode}"] = (round(min(ts), 4), round(st.median(ts), 4))
print(root, json.dumps(out))
