import cProfile, pstats, time, torch, sys
sys.path.insert(0, '.')
from gauntlet.compress.codec import build_codec, param_shapes
from gauntlet.config import GauntletConfig
from gauntlet.model import build_model
from gauntlet.node.gather import Contribution, Decoder
from gauntlet.node.checks import measure_updates
from protocol.container import Limits
torch.set_num_threads(2)
cfg = GauntletConfig()
net = build_model("150m", 0)
shapes = param_shapes(net)
codec = build_codec(cfg.compress.codec_params())
g = torch.Generator().manual_seed(0)
cs = []
for uid in range(2):
    payload = codec.encode({n: 1e-3 * torch.randn(s, generator=g) for n, s in shapes.items()})[0]
    cs.append(Contribution(uid, f"hk{uid}", "ok", tensors=payload))
dec = Decoder(1, Limits(max_bytes=1 << 30), codec, shapes, "cpu")
measure_updates(cs[:1], dec, cfg.scoring)
t = time.perf_counter(); measure_updates(cs, dec, cfg.scoring); print("per contribution", (time.perf_counter() - t) / 2)
cProfile.run("measure_updates(cs, dec, cfg.scoring)", "/tmp/mp.prof")
pstats.Stats("/tmp/mp.prof").sort_stats("cumulative").print_stats(18)
