"""Export to a Hugging Face LlamaForCausalLM directory: transformers loads it
offline and computes our logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gauntlet.model import MODEL_CONFIGS, ModelArgs, Transformer, build_model
from gauntlet.model.export import export_cli, export_hf, hf_name

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed (pip install '.[hf]'); CI installs it via '.[dev]'",
)

GQA = ModelArgs(  # one kv head for four query heads, LLaMA-3's theta and a non-default eps
    vocab_size=300, dim=128, n_layers=2, n_heads=4, n_kv_heads=1, ffn_hidden=352,
    max_seq_len=64, norm_eps=1e-6, rope_theta=500_000.0,
)  # fmt: skip
MHA = ModelArgs(dim=96, n_heads=3, n_kv_heads=3, ffn_hidden=256, max_seq_len=128)


def model_for(args: ModelArgs, seed: int = 0) -> Transformer:
    model = Transformer(args)
    model.init_weights(torch.Generator().manual_seed(seed))
    return model


def hf_logits(out_dir: Path, tokens: torch.Tensor) -> torch.Tensor:
    hf = transformers.LlamaForCausalLM.from_pretrained(out_dir, local_files_only=True)
    with torch.no_grad():
        return hf.eval()(tokens).logits


@pytest.mark.parametrize(
    "args", [MODEL_CONFIGS["tiny"], GQA, MHA], ids=["tiny", "gqa-4q-1kv", "mha"]
)
def test_transformers_computes_our_logits(args, tmp_path):
    model = model_for(args)
    export_hf(model, args, tmp_path)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, args.vocab_size, (2, args.max_seq_len), generator=g)
    with torch.no_grad():
        ours = model(tokens)
    torch.testing.assert_close(hf_logits(tmp_path, tokens), ours, rtol=1e-4, atol=1e-4)


def test_config_json_has_the_llama_fields(tmp_path):
    export_hf(model_for(GQA), GQA, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["tie_word_embeddings"] is False
    assert config["torch_dtype"] == "float32"
    expected = {
        "hidden_size": 128, "intermediate_size": 352, "num_attention_heads": 4,
        "num_key_value_heads": 1, "num_hidden_layers": 2, "rms_norm_eps": 1e-6,
        "rope_theta": 500_000.0, "vocab_size": 300, "max_position_embeddings": 64,
    }  # fmt: skip
    assert expected.items() <= config.items()


def test_every_parameter_gets_a_distinct_hf_name():
    with torch.device("meta"):
        names = [n for n, _ in Transformer(MODEL_CONFIGS["8b"]).named_parameters()]
    hf_names = {hf_name(n) for n in names}
    assert len(hf_names) == len(names) == 3 + 9 * 32
    assert {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"} <= hf_names


def test_bf16_export_stores_bf16_tensors(tmp_path):
    export_hf(build_model("tiny", seed=0), MODEL_CONFIGS["tiny"], tmp_path, dtype=torch.bfloat16)
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert {t.dtype for t in load_file(tmp_path / "model.safetensors").values()} == {torch.bfloat16}


def test_export_cli_writes_the_checkpoint_weights(tmp_path):
    trained = build_model("tiny", seed=11)
    save_file(trained.state_dict(), tmp_path / "ckpt.safetensors")
    export_cli("tiny", tmp_path / "ckpt.safetensors", tmp_path / "hf")
    exported = load_file(tmp_path / "hf" / "model.safetensors")
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(exported[hf_name(name)], tensor, rtol=0, atol=0)


def test_export_cli_without_checkpoint_exports_the_seeded_init(tmp_path):
    export_cli("tiny", None, tmp_path, seed=3)
    exported = load_file(tmp_path / "model.safetensors")
    expected = build_model("tiny", seed=3).state_dict()["output.weight"]
    torch.testing.assert_close(exported["lm_head.weight"], expected, rtol=0, atol=0)


def test_export_cli_rejects_a_checkpoint_of_another_config(tmp_path):
    save_file(build_model("tiny", seed=0).state_dict(), tmp_path / "ckpt.safetensors")
    with pytest.raises(RuntimeError, match="size mismatch"):
        export_cli("small", tmp_path / "ckpt.safetensors", tmp_path / "hf")


def test_export_cli_rejects_an_unknown_config(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        export_cli("nope", None, tmp_path)


def test_export_cli_ships_a_byte_tokenizer_that_auto_tokenizer_loads(tmp_path):
    out = export_cli("tiny", None, tmp_path / "hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)
    text = "héllo, wörld ☃\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == list(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text


def test_export_cli_copies_a_given_tokenizer_and_files_are_world_readable(tmp_path):
    source = tmp_path / "tokenizer.json"
    source.write_text('{"not": "checked"}')
    out = export_cli("tiny", None, tmp_path / "hf", tokenizer=source)
    assert (out / "tokenizer.json").read_text() == source.read_text()
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {
        name: 0o644
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    }


def test_model_export_takes_a_dtype(tmp_path, capsys):
    from gauntlet.cli import main

    assert main(["model", "export", "--out", str(tmp_path / "hf"), "--dtype", "bfloat16"]) == 0
    assert "(bfloat16)" in capsys.readouterr().out
    tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
