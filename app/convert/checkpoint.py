"""A downloaded GPTQ branch: its llama/mistral hyperparameters, shards, and the plan of GGUF tensors to write."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from app.convert.errors import ConvertError
from app.convert.gptq import GptqSettings, QuantisedLinear, read_settings
from app.convert.safetensors_reader import SafetensorsShards, shard_paths

SUPPORTED_ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral"}
_GPTQ_PARTS = (".qweight", ".qzeros", ".scales", ".g_idx")
_LAYER = re.compile(r"\.layers\.(\d+)\.")


@dataclass(frozen=True)
class Hyperparameters:
    """The llama/mistral settings GGUF needs, read from ``config.json``."""

    architecture: str
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_ctx: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict[str, Any] | None
    name: str

    @classmethod
    def from_config(cls, config: dict[str, Any], folder: Path) -> Hyperparameters:
        architectures = config.get("architectures") or []
        known = [a for a in architectures if a in SUPPORTED_ARCHITECTURES]
        model_type = str(config.get("model_type", ""))
        if not known and model_type not in SUPPORTED_ARCHITECTURES.values():
            found = ", ".join(architectures) or model_type or "none given"
            raise ConvertError(f"unsupported architecture ({found}): Hearth converts llama and mistral "
                               "models only")
        architecture = SUPPORTED_ARCHITECTURES[known[0]] if known else model_type
        try:
            n_embd = int(config["hidden_size"])
            n_head = int(config["num_attention_heads"])
            params = cls(
                architecture=architecture,
                n_vocab=int(config["vocab_size"]),
                n_embd=n_embd,
                n_layer=int(config["num_hidden_layers"]),
                n_head=n_head,
                n_head_kv=int(config.get("num_key_value_heads") or n_head),
                head_dim=int(config.get("head_dim") or n_embd // n_head),
                n_ff=int(config["intermediate_size"]),
                n_ctx=int(config.get("max_position_embeddings") or 4096),
                rms_norm_eps=float(config.get("rms_norm_eps") or 1e-6),
                rope_theta=float(config.get("rope_theta") or 10000.0),
                rope_scaling=config.get("rope_scaling") or None,
                name=str(config.get("_name_or_path") or folder.name).rstrip("/").split("/")[-1] or folder.name,
            )
        except KeyError as exc:
            raise ConvertError(f"config.json has no {exc.args[0]!r}; download the branch again") from None
        except (TypeError, ValueError) as exc:
            raise ConvertError(f"config.json has a value of the wrong type ({exc})") from None
        if params.n_head % params.n_head_kv:
            raise ConvertError(f"config.json: {params.n_head} attention heads cannot share "
                               f"{params.n_head_kv} key/value heads evenly")
        return params

    def expected_shape(self, hf_name: str) -> tuple[int, ...] | None:
        """(out, in) of a known linear layer or embedding, (n,) of a norm; None for anything else."""
        q, kv = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
        shapes = {
            "self_attn.q_proj.weight": (q, self.n_embd), "self_attn.k_proj.weight": (kv, self.n_embd),
            "self_attn.v_proj.weight": (kv, self.n_embd), "self_attn.o_proj.weight": (self.n_embd, q),
            "mlp.gate_proj.weight": (self.n_ff, self.n_embd), "mlp.up_proj.weight": (self.n_ff, self.n_embd),
            "mlp.down_proj.weight": (self.n_embd, self.n_ff),
            "input_layernorm.weight": (self.n_embd,), "post_attention_layernorm.weight": (self.n_embd,),
            "embed_tokens.weight": (self.n_vocab, self.n_embd), "lm_head.weight": (self.n_vocab, self.n_embd),
            "model.norm.weight": (self.n_embd,),
        }
        for suffix, shape in shapes.items():
            if hf_name.endswith(suffix):
                return shape
        return None

    def head_permutation(self, hf_name: str) -> np.ndarray | None:
        """Row order that turns HF's rotate-half Q/K layout into llama.cpp's interleaved RoPE pairs.

        As ``LlamaModel.permute`` in llama.cpp's convert_hf_to_gguf.py:
        ``w.reshape(heads, 2, rows // heads // 2, ...).swapaxes(1, 2).reshape(w.shape)``, with the
        key/value head count for ``k_proj``.
        """
        if ".self_attn.q_proj." in hf_name:
            heads = self.n_head
        elif ".self_attn.k_proj." in hf_name:
            heads = self.n_head_kv
        else:
            return None
        rows = heads * self.head_dim
        return np.arange(rows).reshape(heads, 2, self.head_dim // 2).swapaxes(1, 2).reshape(-1)


@dataclass
class PlannedTensor:
    """One GGUF tensor and where it comes from: a GPTQ linear layer (``quantised``) or a plain tensor."""

    gguf_name: str
    hf_name: str
    shape: tuple[int, ...]
    quantised: bool
    sources: list[str] = field(default_factory=list)
    permutation: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.shape[0]


class GptqBranch:
    """A GPTQ branch folder opened for conversion: settings, hyperparameters, shards and tensor plan."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ConvertError(f"{folder} is not a folder; pass the folder of a downloaded GPTQ branch")
        self.folder = folder
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise ConvertError(f"{folder} has no config.json; pass the folder of a downloaded GPTQ branch")
        try:
            self.config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConvertError(f"config.json in {folder} cannot be read ({exc}); download the branch again") from None
        self.hparams = Hyperparameters.from_config(self.config, folder)
        self.settings: GptqSettings = read_settings(folder, self.config)
        self.shards = SafetensorsShards(shard_paths(folder))
        self.plan = self._plan()

    def close(self) -> None:
        self.shards.close()

    def _plan(self) -> list[PlannedTensor]:
        names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, self.hparams.n_layer)
        plan: list[PlannedTensor] = []
        for name in self.shards:
            if name.endswith(_GPTQ_PARTS[1:]) or name.endswith("rotary_emb.inv_freq"):
                continue
            quantised = name.endswith(".qweight")
            hf_name = name[: -len(".qweight")] + ".weight" if quantised else name
            gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise ConvertError(f"tensor {name} has no place in a {self.hparams.architecture} GGUF; "
                                   "the checkpoint is not a plain llama/mistral model")
            if quantised:
                base = name[: -len(".qweight")]
                missing = [base + part for part in _GPTQ_PARTS[1:3] if base + part not in self.shards]
                if missing:
                    raise ConvertError(f"{missing[0]} is missing: a GPTQ layer needs qweight, qzeros and scales; "
                                       "a shard may be incomplete")
                sources = [base + part for part in _GPTQ_PARTS if base + part in self.shards]
                in_features = self.shards.shape(name)[0] * 32 // self.settings.bits
                shape: tuple[int, ...] = (self.shards.shape(name)[1], in_features)
            else:
                sources, shape = [name], self.shards.shape(name)
            expected = self.hparams.expected_shape(hf_name)
            if expected is not None and tuple(shape) != expected:
                packed = f" (unpacked from {list(self.shards.shape(name))} at {self.settings.bits} bits)" \
                    if quantised else ""
                raise ConvertError(f"{hf_name} has shape {list(shape)}{packed} but config.json needs "
                                   f"{list(expected)}; the weights and config.json do not match")
            plan.append(PlannedTensor(gguf_name, hf_name, tuple(shape), quantised, sources,
                                      self.hparams.head_permutation(hf_name)))
        if not any(t.quantised for t in plan):
            raise ConvertError(f"{self.folder} has GPTQ settings but no qweight tensors; download the branch again")
        if not any(t.gguf_name == "token_embd.weight" for t in plan):
            raise ConvertError("the checkpoint has no token embedding (embed_tokens); a shard may be missing")
        return sorted(plan, key=_tensor_order)

    def linear(self, tensor: PlannedTensor) -> QuantisedLinear:
        """The packed GPTQ tensors of a planned linear layer, read and checked."""
        base = tensor.sources[0][: -len(".qweight")]
        g_idx = self.shards.array(base + ".g_idx") if base + ".g_idx" in self.shards else None
        return QuantisedLinear.build(base, self.shards.array(base + ".qweight"), self.shards.array(base + ".qzeros"),
                                     self.shards.array(base + ".scales"), g_idx, self.settings)

    def source_bytes(self, tensor: PlannedTensor) -> int:
        return sum(self.shards.entries[name].nbytes for name in tensor.sources)


def _tensor_order(tensor: PlannedTensor) -> tuple[int, str]:
    if tensor.gguf_name.startswith("token_embd"):
        return (-1, tensor.gguf_name)
    match = _LAYER.search(tensor.hf_name)
    return (int(match.group(1)) if match else 1 << 30, tensor.gguf_name)
