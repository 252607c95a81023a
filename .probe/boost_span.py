"""Probe: each evaluated update's cosine with the last aggregate, the one before, and the
share of it in the span of the last K aggregates (a localnet run dir)."""
import json, sys, glob, os
from pathlib import Path
import torch
from gauntlet.config.schema import GauntletConfig
from gauntlet.model import build_model
from gauntlet.compress.codec import build_codec, param_shapes
from gauntlet.node.gather import Decoder, open_payload, decode_update
from protocol.container import Limits
from protocol.sealed import open_sealed, unseal, open_reveal

run = Path(sys.argv[1]); K = int(sys.argv[2]) if len(sys.argv) > 2 else 4
cfg = GauntletConfig.model_validate(json.loads((run / "node-config.json").read_text()))
model = build_model(cfg.model.name, cfg.model.seed)
shapes = param_shapes(model)
codec = build_codec(cfg.compress.codec_params())
dec = Decoder(cfg.chain.netuid, Limits(max_bytes=1 << 30), codec, shapes, "cpu")
rec = json.loads((run / "report/recording.json").read_text())
beh = {int(k): v for k, v in json.loads((run / "summary.json").read_text())["behaviours"].items()}
hk = {}
for w in rec["journals"][0]:
    for uid, h in w.get("hotkeys", {}).items():
        hk[h] = int(uid)
updates = {}  # (window, uid) -> Contribution
for bucket in (run / "stores").iterdir():
    for f in bucket.glob("gauntlet/v2/contributions/*/*.sealed"):
        window = int(f.parent.name); h = f.stem
        if h not in hk: continue
        r = bucket / f"gauntlet/v2/reveals/{f.parent.name}/{h}.json"
        if not r.exists(): continue
        key = open_reveal(r.read_bytes(), expected_hotkey=h, expected_window=window, netuid=cfg.chain.netuid)
        sealed = open_sealed(f.read_bytes(), expected_hotkey=h, expected_window=window, expected_netuid=cfg.chain.netuid, max_bytes=1 << 30)
        c = open_payload(hk[h], h, window, unseal(sealed, key), dec)
        if c.ok: updates[(window, hk[h])] = c
# aggregates from the lead's records
aggs = {}
for f in (run / "stores").glob("*/gauntlet/v2/aggregations/*/*.json"):
    window = int(f.parent.name)
    body = json.loads(json.loads(f.read_text())["body"])
    used = [updates[(window, c["uid"])] for c in body["contributions"] if (window, c["uid"]) in updates]
    if len(used) != len(body["contributions"]):
        print("window", window, "missing", len(body["contributions"]) - len(used)); continue
    used.sort(key=lambda c: c.uid)
    aggs[window] = codec.decode_batch([c.tensors for c in used], shapes, normalise=cfg.compress.normalise, clip_norm=cfg.compress.clip_norm, device="cpu")
def flat(d): return torch.cat([d[n].reshape(-1).double() for n in shapes])
A = {w: flat(a) for w, a in aggs.items()}
print("windows with aggregates", sorted(A))
show = [u for u in sorted(beh) if beh[u] in ("honest", "boost", "mix-previous", "wrongdata-part", "shrink")]
print("uid behaviour: per window  cos(A_w-1) / cos(A_w-2) / R2 span(A_w-1..w-K)")
for u in show:
    row = []
    for w in range(2, 20):
        if (w, u) not in updates or (w - 1) not in A: row.append("   -   "); continue
        x = flat(decode_update(updates[(w, u)], dec)); xn = x.norm()
        basis = [A[v] for v in range(w - 1, w - 1 - K, -1) if v in A]
        Q, _ = torch.linalg.qr(torch.stack(basis, 1))
        r2 = float((Q.T @ x).norm() / xn) ** 2
        c1 = float(x @ A[w - 1] / (xn * A[w - 1].norm()))
        c2 = float(x @ A[w - 2] / (xn * A[w - 2].norm())) if (w - 2) in A else float("nan")
        row.append(f"{c1:.2f}/{c2:.2f}/{r2:.2f}")
    print(u, beh[u][:8], " ".join(row))
print("after the limit (plain median of the window's cosines): R2 of the lowered update in span(A_w-2..w-K) beyond A_w-1")
import statistics
for w in range(3, 20):
    if (w - 1) not in A: continue
    a1 = A[w - 1] / A[w - 1].norm()
    xs = {u: flat(decode_update(updates[(w, u)], dec)) for u in sorted(beh) if (w, u) in updates and beh[u] not in ("validator",)}
    cos = {u: float(x @ a1 / x.norm()) for u, x in xs.items()}
    m = max(0.0, statistics.median(cos.values()))
    older = [A[v] for v in range(w - 2, w - 1 - K, -1) if v in A]
    B = torch.stack([a1] + [o / o.norm() for o in older], 1)
    Q, _ = torch.linalg.qr(B)
    out = []
    for u in show:
        if u not in xs: out.append("  -  "); continue
        x = xs[u]; n = x.norm()
        if cos[u] > m:
            r = x - (x @ a1) * a1
            x = n * (m * a1 + (1 - m * m) ** 0.5 * r / r.norm())
        p = Q.T @ x  # coordinates: first along A_w-1, the rest across it in the older span
        out.append(f"{float(p[1:].norm() / n) ** 2:.3f}")
    print(w, f"lim {m:.2f}", " ".join(f"{beh[u][:5]}{u}:{o}" for u, o in zip(show, out)))
