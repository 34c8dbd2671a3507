"""The typed messages between Hearth and its llama.cpp worker process, and how they are framed."""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from typing import IO, Literal

from app.errors import HearthError

_LENGTH = struct.Struct("<I")
MAX_FRAME = 64 << 20


class EngineError(HearthError):
    """A load or generation failure, with ``kind`` saying what the user can do about it."""

    def __init__(self, message: str, kind: str = "generate") -> None:
        super().__init__(message)
        self.kind = kind


class ProtocolError(Exception):
    """The other side sent something that is not a frame (it died mid-write)."""


# ---- settings ---------------------------------------------------------------------------

KvCacheType = Literal["f16", "q8_0", "q4_0", "f32"]
# CPU threads: a fixed count, or "auto" (None too): start from the free cores, then tune while replying.
ThreadSetting = int | Literal["auto"] | None


def parse_threads(text: str) -> int | Literal["auto"]:
    """``--threads`` and settings: "auto" or a whole number >= 1; a clear error otherwise."""
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if not value.isdigit() or int(value) < 1:
        raise HearthError(f"threads must be 'auto' or a whole number of at least 1, not {text!r}")
    return int(value)


def fixed_threads(setting: ThreadSetting) -> int | None:
    """The fixed count of a thread setting, or None for auto."""
    return setting if isinstance(setting, int) and setting >= 1 else None

FlashAttention = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class LoadSettings:
    """How to load a model: GPU layers (-1 = all), context, threads and memory options."""

    path: str
    n_ctx: int = 4096
    n_gpu_layers: int = 0
    n_threads: ThreadSetting = None  # None or "auto": adaptive; N: fixed
    n_batch: int = 512
    flash_attention: FlashAttention = "auto"
    kv_cache_type: KvCacheType = "f16"
    use_mmap: bool = True
    use_mlock: bool = False
    saved_chats_bytes: int = 256 << 20
    # Remote machines ("host:port" of `hearth rpc-server`s) that take layers; registered in the worker.
    rpc: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling for one reply; temperature 0 means greedy."""

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    seed: int | None = None
    max_tokens: int = 512
    ignore_eos: bool = False
    frequency_penalty: float = 0.0  # OpenAI's: minus this times how often a token already came
    presence_penalty: float = 0.0  # OpenAI's: minus this once a token has come at all


# ---- commands (client -> worker) --------------------------------------------------------


@dataclass(frozen=True)
class Load:
    settings: LoadSettings


@dataclass(frozen=True)
class Generate:
    """Reply to ``prompt``; the worker reuses the longest cached token prefix of ``chat_id``."""

    request_id: int
    prompt: str
    stop: tuple[str, ...] = ()
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    chat_id: str = "default"


@dataclass(frozen=True)
class Stop:
    """Stop request ``request_id`` (and anything older) now, even mid prompt evaluation."""

    request_id: int


@dataclass(frozen=True)
class Unload:
    pass


@dataclass(frozen=True)
class Shutdown:
    pass


Command = Load | Generate | Stop | Unload | Shutdown

# ---- events (worker -> client) ----------------------------------------------------------


def plural_threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


@dataclass(frozen=True)
class ThreadReport:
    """What the worker runs with now and why (shown in the model bar's tooltip)."""

    mode: Literal["auto", "fixed"]
    n_threads: int
    n_threads_batch: int
    start: int
    cores: int
    reason: str

    def describe(self) -> str:
        counts = (plural_threads(self.n_threads) if self.n_threads == self.n_threads_batch
                  else f"{plural_threads(self.n_threads)} decoding, {self.n_threads_batch} for prompts")
        if self.mode == "fixed":
            return f"CPU: {counts} (fixed in settings)"
        return f"CPU: {counts} (auto: {self.reason})"


@dataclass(frozen=True)
class ModelInfo:
    path: str
    name: str
    architecture: str
    n_ctx: int
    n_ctx_train: int
    n_layer: int
    n_gpu_layers: int
    n_params: int
    size_bytes: int
    vocab_size: int
    bos_token: str
    eos_token: str
    add_bos: bool
    gpu_offload_supported: bool
    load_s: float
    # With remote machines: where the layers went ("30 layers: 15 on studio:50052 (device 0), ...").
    split: str = ""
    threads: ThreadReport | None = None


@dataclass(frozen=True)
class Ready:
    """The worker process is up (sent once after start)."""

    pid: int


@dataclass(frozen=True)
class Loaded:
    info: ModelInfo


@dataclass(frozen=True)
class Tokens:
    request_id: int
    text: str
    count: int = 1


StopReason = Literal["eos", "stop_string", "max_tokens", "stopped", "context_full"]


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    reused_tokens: int
    evaluated_tokens: int
    generated_tokens: int
    prompt_eval_s: float
    decode_s: float
    ttft_s: float
    stop_reason: StopReason
    restored_chat: bool = False
    threads: ThreadReport | None = None  # the counts after this reply (auto may have moved them)

    @property
    def decode_tps(self) -> float:
        return (self.generated_tokens - 1) / self.decode_s if self.decode_s > 0 else 0.0

    @property
    def prompt_tps(self) -> float:
        return self.evaluated_tokens / self.prompt_eval_s if self.prompt_eval_s > 0 else 0.0


@dataclass(frozen=True)
class Done:
    request_id: int
    stats: GenerationStats


ErrorKind = Literal["load", "memory", "template", "context", "generate", "protocol"]


@dataclass(frozen=True)
class Error:
    """A failure the user can act on; ``request_id`` is None for a failed load."""

    message: str
    kind: ErrorKind = "generate"
    request_id: int | None = None


@dataclass(frozen=True)
class Unloaded:
    pass


@dataclass(frozen=True)
class Crashed:
    """Made by the client, not sent: the worker died; a fresh one has been started."""

    message: str
    exit_code: int | None


Event = Ready | Loaded | Tokens | Done | Error | Unloaded | Crashed


# ---- framing ----------------------------------------------------------------------------


def write_frame(stream: IO[bytes], message: Command | Event) -> None:
    """One message: a 4-byte little-endian length, then its pickle."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Command | Event | None:
    """The next message, or None at a clean end of stream."""
    header = _read_exact(stream, _LENGTH.size)
    if header is None:
        return None
    (length,) = _LENGTH.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes")
    payload = _read_exact(stream, length)
    if payload is None:
        raise ProtocolError("stream ended inside a frame")
    message: Command | Event = pickle.loads(payload)
    return message


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    if not data:
        return None
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            raise ProtocolError("stream ended inside a frame")
        data += more
    return data
