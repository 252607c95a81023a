import sys, time, torch, collections
sys.path.insert(0, '.')
from bench.codec import model_shapes, subset, ASSUMED_1B2
from gauntlet.compress.codec import build_codec
from gauntlet.config import GauntletConfig
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.node.checks import measure_updates
from protocol.container import Limits
from torch.profiler import profile, ProfilerActivity
torch.set_num_threads(2)
shapes = subset(model_shapes(ASSUMED_1B2), ("layers.0.", "layers.1.", "layers.2."))
total = sum(torch.Size(s).numel() for s in shapes.values())
cfg = GauntletConfig()
scoring = cfg.scoring.model_copy(update={"sketch_coordinates": total // 1144})
codec = build_codec(cfg.compress.codec_params())
g = torch.Generator().manual_seed(0)
cs = [Contribution(u, f"hk{u}", "ok", tensors=codec.encode({n: 1e-3*torch.randn(s, generator=g) for n, s in shapes.items()})[0]) for u in range(int(sys.argv[1]) if len(sys.argv) > 1 else 4)]
dec = Decoder(1, Limits(max_bytes=1 << 30), codec, shapes, "cpu")
measure_updates(cs[:1], dec, scoring)
t = time.perf_counter(); norms, sk = measure_updates(cs, dec, scoring); dt = (time.perf_counter() - t) / len(cs)
with profile(activities=[ProfilerActivity.CPU]) as prof:
    measure_updates(cs, dec, scoring)
ev = prof.key_averages()
print("names", len(shapes), "params", total, "s/contribution", round(dt, 4))
print("aten per contribution", sum(e.count for e in ev if e.key.startswith("aten::")) / len(cs),
      "scalar reads", sum(e.count for e in ev if e.key == "aten::_local_scalar_dense") / len(cs))
print(sorted(((e.count, e.key) for e in ev if e.key.startswith("aten::")), reverse=True)[:15])
import hashlib, numpy as np
print("norms", [round(v, 9) for v in norms.values()], "sketch sha", hashlib.sha256(np.stack(list(sk.values())).tobytes()).hexdigest()[:16])
