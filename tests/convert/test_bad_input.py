"""Bad GPTQ branches get one clear error each; cancelled or failed conversions leave no finished-looking file."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from app.cli import main
from app.convert import ConversionCancelled, ConvertError, ConvertProgress, convert_branch
from tests.convert.tiny_gptq import GptqConfig, build_checkpoint, write_safetensors


@pytest.fixture
def branch(tmp_path, tokenizer_model) -> Path:
    return build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(4, 64, True, False, "gptq"),
                            shards=2).folder


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))


def outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_missing_shard_named_from_the_index(branch) -> None:
    (branch / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ConvertError, match=r"shard model-00002-of-00002\.safetensors is missing"):
        convert_branch(branch, branch.parent / "t.gguf", "f16")


def test_missing_numbered_shard_without_an_index(branch) -> None:
    (branch / "model.safetensors.index.json").unlink()
    (branch / "model-00001-of-00002.safetensors").unlink()
    with pytest.raises(ConvertError, match=r"shard model-00001-of-00002\.safetensors is missing"):
        convert_branch(branch, branch.parent / "t.gguf", "f16")


def test_truncated_shard(branch) -> None:
    shard = branch / "model-00001-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-1000])
    with pytest.raises(ConvertError, match="truncated or damaged"):
        convert_branch(branch, branch.parent / "t.gguf", "f16")


def test_config_that_is_not_gptq(branch) -> None:
    edit_config(branch, quantization_config=None)
    with pytest.raises(ConvertError, match="is not a GPTQ branch"):
        convert_branch(branch, branch.parent / "t.gguf", "f16")
    edit_config(branch, quantization_config={"quant_method": "awq", "bits": 4})
    with pytest.raises(ConvertError, match="quantised with 'awq', not GPTQ"):
        convert_branch(branch, branch.parent / "t.gguf", "f16")


def test_unsupported_architecture(branch) -> None:
    edit_config(branch, architectures=["Qwen2ForCausalLM"], model_type="qwen2")
    with pytest.raises(ConvertError, match=r"unsupported architecture \(Qwen2ForCausalLM\)"):
        convert_branch(branch, branch.parent / "t.gguf", "f16")


def test_weights_that_do_not_match_the_config(branch) -> None:
    edit_config(branch, intermediate_size=1024)
    message = r"gate_proj\.weight has shape \[512, 256\] \(unpacked from \[32, 512\] at 4 bits\).*needs \[1024, 256\]"
    with pytest.raises(ConvertError, match=message):
        convert_branch(branch, branch.parent / "t.gguf", "f16")


def test_bits_that_do_not_match_the_packing(branch) -> None:
    config = json.loads((branch / "config.json").read_text())
    edit_config(branch, quantization_config={**config["quantization_config"], "bits": 8})
    with pytest.raises(ConvertError, match="has shape"):
        convert_branch(branch, branch.parent / "t.gguf", "f16")


def test_damaged_layer_midway_leaves_nothing(tmp_path, tokenizer_model) -> None:
    """An error after the output was started (a bad g_idx in the last layer) removes the partial file."""
    folder = build_checkpoint(tmp_path / "branch", tokenizer_model, GptqConfig(4, 64, True, False, "gptq")).folder
    from app.convert.safetensors_reader import SafetensorsShards

    with SafetensorsShards([folder / "model.safetensors"]) as shards:
        tensors = {name: shards.array(name) for name in shards}
    tensors["model.layers.1.mlp.up_proj.g_idx"][3] = 99
    write_safetensors(folder / "model.safetensors", tensors)
    with pytest.raises(ConvertError, match=r"model\.layers\.1\.mlp\.up_proj\.g_idx points outside"):
        convert_branch(folder, tmp_path / "t.gguf", "f16")
    assert outputs(tmp_path) == []


@pytest.mark.parametrize("out_type", ["f16", "q4_k_m"])
def test_cancel_leaves_no_finished_looking_file(branch, out_type) -> None:
    seen: list[ConvertProgress] = []

    def cancel() -> bool:
        stage = "requantize" if out_type == "q4_k_m" else "convert"
        return any(p.stage == stage and p.done < p.total for p in seen) and len(seen) > 3

    with pytest.raises(ConversionCancelled):
        convert_branch(branch, branch.parent / "t.gguf", out_type, progress=seen.append, cancel=cancel)
    assert seen and seen[-1].done < seen[-1].total
    assert outputs(branch.parent) == []


def test_not_enough_disk_space(branch, monkeypatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(ConvertError, match=r"not enough free disk space .* needs about 0\.\d GB and 0\.0 GB is free"):
        convert_branch(branch, branch.parent / "t.gguf", "q4_k_m")
    assert outputs(branch.parent) == []


def test_unknown_template_and_type(branch) -> None:
    with pytest.raises(ConvertError, match=r"no prompt template 'nope' in the catalogue; choose one of .*chatml"):
        convert_branch(branch, branch.parent / "t.gguf", "f16", template="nope")
    with pytest.raises(ConvertError, match="unknown output type 'q5_k'"):
        convert_branch(branch, branch.parent / "t.gguf", "q5_k")


def test_cli_converts_and_reports_errors_in_one_line(branch, capsys) -> None:
    out = branch.parent / "cli.gguf"
    assert main(["convert", str(branch), "--out", str(out), "--type", "q8_0", "--template", "chatml"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "converting: 100.0%" in captured.err
    assert out.is_file() and outputs(branch.parent) == ["cli.gguf", "cli.gguf.json"]

    assert main(["convert", str(branch.parent / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hearth: error: ") and "is not a folder" in err[0]


def test_embedding_rows_disagree_with_vocabulary(branch) -> None:
    edit_config(branch, vocab_size=300)
    with pytest.raises(ConvertError, match=r"embed_tokens\.weight has shape \[400, 256\].*needs \[300, 256\]"):
        convert_branch(branch, branch.parent / "t.gguf", "f16")
