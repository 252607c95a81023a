import sys, collections, torch, numpy as np
sys.path.insert(0, '.')
from bench.codec import SETTINGS, build_codec
import bench.codec as bc
from torch.profiler import profile, ProfilerActivity
torch.set_num_threads(2)
shapes = {"attn.wq": (2048, 2048), "attn.wk": (512, 2048), "attn.wv": (512, 2048), "attn.wo": (2048, 2048),
          "ffn.w1": (5632, 2048), "ffn.w2": (2048, 5632), "ffn.w3": (5632, 2048), "n1": (2048,), "n2": (2048,)}
for label in sys.argv[1:]:
    codec = build_codec(SETTINGS[label])
    g = torch.Generator().manual_seed(1)
    payloads = [codec.encode({n: 1e-3*torch.randn(s, generator=g) for n, s in shapes.items()})[0] for _ in range(16)]
    for mode in ("none", "per_peer"):
        codec.decode_batch(payloads, shapes, normalise=mode)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            out = codec.decode_batch(payloads, shapes, normalise=mode)
        ev = prof.key_averages()
        tot = sum(e.count for e in ev if e.key.startswith('aten::'))
        views = {'aten::view','aten::select','aten::slice','aten::as_strided','aten::split','aten::narrow','aten::unsqueeze','aten::expand','aten::t','aten::transpose','aten::permute','aten::reshape','aten::alias','aten::detach','aten::lift_fresh','aten::empty','aten::empty_strided','aten::split_with_sizes','aten::_reshape_alias','aten::unbind','aten::resolve_conj','aten::resolve_neg', 'aten::result_type','aten::is_nonzero','aten::item','aten::_local_scalar_dense','aten::to','aten::_to_copy','aten::contiguous','aten::flatten','aten::squeeze','aten::numel','aten::dim'}
        work = sum(e.count for e in ev if e.key.startswith('aten::') and e.key not in views)
        cs = 0
        for n in shapes: cs = (cs*1000003 + hash(out[n].numpy().tobytes())) % (1<<61)
        print(label, mode, 'aten', tot, 'work', work, 'checksum', cs)
        print('  ', sorted([(e.count, e.key) for e in ev if e.key.startswith('aten::') and e.key not in views], reverse=True)[:25])
