"""llama.cpp through its low-level API: load, prompt evaluation with KV prefix reuse, native sampling."""

from __future__ import annotations

import codecs
import ctypes
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import llama_cpp

from app.engine.offload import SplitDevice, build_offloads, describe_split
from app.engine.protocol import (
    EngineError,
    GenerationStats,
    LoadSettings,
    ModelInfo,
    SamplingSettings,
    StopReason,
    fixed_threads,
)
from app.engine.thread_start import LoadSample, usable_cores
from app.engine.thread_tuner import ThreadControl, thread_control
from app.formats.gguf_meta import GGUFMetadata, read_gguf_metadata

_KV_TYPES = {"f32": 0, "f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": 2}
_FLASH = {
    "auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
    "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}
_MEMORY_HINTS = ("failed to allocate", "out of memory", "unable to allocate", "cudaMalloc", "OOM")
_NO_ABORT = llama_cpp.ggml_abort_callback()


class LogTail:
    """Keeps llama.cpp's recent warnings and errors, to explain a failed load; prints nothing.

    One per process (:meth:`install`): llama.cpp holds the callback pointer for good.
    """

    _installed: LogTail | None = None

    @classmethod
    def install(cls) -> LogTail:
        if cls._installed is None:
            cls._installed = cls()
        return cls._installed

    def __init__(self, size: int = 40) -> None:
        self.lines: deque[str] = deque(maxlen=size)
        self._callback = llama_cpp.llama_log_callback(self._log)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))

    def _log(self, level: int, text: bytes, _data: ctypes.c_void_p) -> None:
        if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            line = " ".join(text.decode("utf-8", errors="replace").split())
            if line:
                self.lines.append(line)

    def clear(self) -> None:
        self.lines.clear()

    def explain(self) -> str:
        errors = [line for line in self.lines if "error" in line.lower() or "failed" in line.lower()]
        return "; ".join(dict.fromkeys(errors or list(self.lines)[-3:]))[:600]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class _SavedChat:
    state: ctypes.Array[ctypes.c_uint8]
    tokens: list[int]


class StopStrings:
    """Finds stop strings across token boundaries; holds back text that might start one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add text; return (text safe to show now, whether a stop string was hit)."""
        self.pending += text
        if not self.stops:
            out, self.pending = self.pending, ""
            return out, False
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            out = self.pending[: min(hits)]
            self.pending = ""
            return out, True
        hold = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.pending)), hold, -1):
                if self.pending.endswith(stop[:k]):
                    hold = k
                    break
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class LlamaRunner:
    """One loaded model and context in this process (the worker), one chat sequence at a time."""

    def __init__(self, settings: LoadSettings, log: LogTail) -> None:
        self.settings = settings
        self.log = log
        self.model: llama_cpp.llama_model_p | None = None
        self.ctx: llama_cpp.llama_context_p | None = None
        self.cached: list[int] = []
        self.chat_id: str | None = None
        self.saved: OrderedDict[str, _SavedChat] = OrderedDict()
        self.stop_requested: Callable[[], bool] = lambda: False
        self._abort = llama_cpp.ggml_abort_callback(lambda _data: bool(self.stop_requested()))
        self._one = (llama_cpp.llama_token * 1)()
        self._one_batch = llama_cpp.llama_batch_get_one(self._one, 1)
        self._piece = ctypes.create_string_buffer(256)
        self.meta: GGUFMetadata | None = None
        self.threads: ThreadControl | None = None

    # ---- loading ----------------------------------------------------------------------

    def load(self) -> ModelInfo:
        started = time.perf_counter()
        s = self.settings
        if s.kv_cache_type in ("q8_0", "q4_0") and s.flash_attention == "off":
            raise EngineError(
                f"a {s.kv_cache_type} KV cache needs flash attention: set flash attention to "
                "auto or on, or use an f16 KV cache", "load")
        self.meta = meta = read_gguf_metadata(s.path)  # clear errors for truncated or foreign files
        self.log.clear()
        load_sample = LoadSample() if fixed_threads(s.n_threads) is None else None  # others' CPU use meanwhile
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = s.n_gpu_layers if s.n_gpu_layers >= 0 else 999
        mparams.use_mmap = s.use_mmap
        mparams.use_mlock = s.use_mlock
        mparams.use_extra_bufts = not amx_cpu()
        split_devices = self._choose_devices(mparams)
        model = llama_cpp.llama_model_load_from_file(s.path.encode(), mparams)
        if not model:
            raise self._load_error(f"llama.cpp could not load {s.path}")
        self.model = model
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = s.n_ctx
        cparams.n_batch = s.n_batch
        cparams.n_ubatch = min(s.n_batch, 512)
        self.threads = threads = thread_control(s.n_threads, load_sample)
        cparams.n_threads, cparams.n_threads_batch = threads.counts
        cparams.flash_attn_type = _FLASH[s.flash_attention]
        cparams.type_k = cparams.type_v = _KV_TYPES[s.kv_cache_type]
        cparams.no_perf = True
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            self.close()
            raise self._load_error(
                f"llama.cpp could not create a {s.n_ctx}-token context for {s.path}", context=True
            )
        self.ctx = ctx
        threads.apply = lambda n, n_batch: llama_cpp.llama_set_n_threads(ctx, n, n_batch)
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_ctx = llama_cpp.llama_n_ctx(ctx)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.memory = llama_cpp.llama_get_memory(ctx)
        bos = llama_cpp.llama_vocab_bos(self.vocab)
        eos = llama_cpp.llama_vocab_eos(self.vocab)
        self.bos_text = self._token_text(bos)
        self.eos_text = self._token_text(eos)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        n_layer = llama_cpp.llama_model_n_layer(model)
        return ModelInfo(
            path=s.path,
            name=meta.name or meta.path.stem,
            architecture=meta.architecture,
            n_ctx=self.n_ctx,
            n_ctx_train=llama_cpp.llama_model_n_ctx_train(model),
            n_layer=n_layer,
            n_gpu_layers=min(mparams.n_gpu_layers, n_layer + 1),
            n_params=llama_cpp.llama_model_n_params(model),
            size_bytes=llama_cpp.llama_model_size(model),
            vocab_size=self.n_vocab,
            bos_token=self.bos_text,
            eos_token=self.eos_text,
            add_bos=self.add_bos,
            gpu_offload_supported=build_offloads(),
            load_s=time.perf_counter() - started,
            split=describe_split(mparams.n_gpu_layers, n_layer, split_devices) if s.rpc else "",
            threads=threads.report(),
        )

    def _choose_devices(self, mparams: llama_cpp.llama_model_params) -> list[SplitDevice]:
        """Register the remote machines (before the load, in this process) and pick the devices."""
        if not self.settings.rpc and not _rpc_used():
            return []
        from app.engine.rpc import RpcError
        from app.engine.rpc_native import prepare_devices

        try:
            devices, split = prepare_devices(self.settings.rpc)
        except RpcError as exc:
            raise EngineError(str(exc), "load") from None
        if devices is not None:
            self._devices = devices  # llama.cpp reads the array during the load
            # A NULL-terminated ggml_backend_dev_t array; the binding types the field as c_void_p.
            mparams.devices = ctypes.cast(devices, ctypes.c_void_p)  # type: ignore[assignment]
        return split

    def _load_error(self, headline: str, context: bool = False) -> EngineError:
        """Explain a failed load from llama.cpp's log; with no stated cause, a context that
        cannot be created is taken to be one that does not fit."""
        detail = self.log.explain()
        memory = any(h.lower() in detail.lower() for h in _MEMORY_HINTS)
        memory = memory or (context and not detail)
        text = f"{headline}: {detail}" if detail else headline
        if memory:
            text += (". It does not fit in memory: try fewer GPU layers or a smaller context "
                     f"(now {self.settings.n_ctx} tokens), then load again.")
            return EngineError(text, "memory")
        return EngineError(text, "load")

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        raw = llama_cpp.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    def close(self) -> None:
        self.saved.clear()
        if self.ctx:
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None
        self.cached = []

    # ---- tokens -------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        raw = text.encode("utf-8")
        add_special = self.add_bos and not (self.bos_text and text.startswith(self.bos_text))
        capacity = len(raw) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self.vocab, raw, len(raw), buffer, capacity, add_special, True)
        if n < 0:
            capacity = -n
            buffer = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self.vocab, raw, len(raw), buffer, capacity, add_special, True)
        return list(buffer[:n])

    def eog_texts(self) -> list[str]:
        """The texts of every end-of-generation token in the vocabulary (llama.cpp's EOG set:
        eos, eot, eom and markers such as ``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``)."""
        is_eog = llama_cpp.llama_vocab_is_eog
        return [self._token_text(t) for t in range(self.n_vocab) if is_eog(self.vocab, t)]

    def piece(self, token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(self.vocab, token, self._piece, 256, 0, False)
        if n < 0:
            bigger = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, bigger, -n, 0, False)
            return bigger.raw[:n]
        return ctypes.string_at(self._piece, n)

    # ---- chats --------------------------------------------------------------------------

    def switch_chat(self, chat_id: str) -> bool:
        """Make ``chat_id`` the live sequence; True when its saved KV state came back."""
        if chat_id == self.chat_id:
            return False
        if self.chat_id is not None and self.cached:
            self._save_current()
        llama_cpp.llama_memory_clear(self.memory, True)
        self.cached = []
        self.chat_id = chat_id
        saved = self.saved.pop(chat_id, None)
        if saved is None:
            return False
        restored = llama_cpp.llama_state_seq_set_data(self.ctx, saved.state, len(saved.state), 0)
        if restored == 0:
            llama_cpp.llama_memory_clear(self.memory, True)
            return False
        self.cached = saved.tokens
        return True

    def _save_current(self) -> None:
        assert self.chat_id is not None
        size = llama_cpp.llama_state_seq_get_size(self.ctx, 0)
        budget = self.settings.saved_chats_bytes
        if size == 0 or size > budget:
            return
        state = (ctypes.c_uint8 * size)()
        llama_cpp.llama_state_seq_get_data(self.ctx, state, size, 0)
        self.saved[self.chat_id] = _SavedChat(state, list(self.cached))
        while sum(len(s.state) for s in self.saved.values()) > budget:
            self.saved.popitem(last=False)

    # ---- generation ---------------------------------------------------------------------

    def _sampler(self, sampling: SamplingSettings) -> llama_cpp.llama_sampler_p:
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        chain = llama_cpp.llama_sampler_chain_init(params)
        add = llama_cpp.llama_sampler_chain_add
        penalised = (sampling.repeat_penalty != 1.0 or sampling.frequency_penalty != 0.0
                     or sampling.presence_penalty != 0.0)
        if penalised and sampling.repeat_last_n != 0:
            add(chain, llama_cpp.llama_sampler_init_penalties(
                self.n_vocab, sampling.repeat_last_n, sampling.repeat_penalty,
                sampling.frequency_penalty, sampling.presence_penalty))
        if sampling.temperature <= 0:
            add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        if sampling.top_k > 0:
            add(chain, llama_cpp.llama_sampler_init_top_k(sampling.top_k))
        if 0 < sampling.top_p < 1:
            add(chain, llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
        if sampling.min_p > 0:
            add(chain, llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
        add(chain, llama_cpp.llama_sampler_init_temp(sampling.temperature))
        seed = llama_cpp.LLAMA_DEFAULT_SEED if sampling.seed is None else sampling.seed & 0xFFFFFFFF
        add(chain, llama_cpp.llama_sampler_init_dist(seed))
        return chain

    def _evaluate_prompt(self, tokens: list[int]) -> tuple[int, int, bool]:
        """Evaluate what the cache lacks; return (reused, evaluated, stopped)."""
        keep = common_prefix(self.cached, tokens)
        if keep == len(tokens):
            keep -= 1  # the last token must run again to give fresh logits
        if keep < len(self.cached):
            llama_cpp.llama_memory_seq_rm(self.memory, 0, keep, -1)
            del self.cached[keep:]
        new = tokens[keep:]
        llama_cpp.llama_set_abort_callback(self.ctx, self._abort, None)
        threads = self.threads
        try:
            step = self.settings.n_batch
            for start in range(0, len(new), step):
                chunk = new[start : start + step]
                array = (llama_cpp.llama_token * len(chunk))(*chunk)
                if threads is not None:
                    threads.begin_prompt()
                code = llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(array, len(chunk)))
                if code == 2 or self.stop_requested():
                    # Aborted: drop whatever part of this chunk reached the cache.
                    llama_cpp.llama_memory_seq_rm(self.memory, 0, len(self.cached), -1)
                    return keep, start, True
                if code != 0:
                    llama_cpp.llama_memory_seq_rm(self.memory, 0, len(self.cached), -1)
                    raise EngineError(f"llama.cpp failed to evaluate the prompt (code {code})")
                if threads is not None:
                    threads.evaluated(len(chunk))  # may change the counts for the next decode call
                self.cached.extend(chunk)
        finally:
            llama_cpp.llama_set_abort_callback(self.ctx, _NO_ABORT, None)
        return keep, len(new), False

    def generate(
        self,
        prompt: str,
        stop: Sequence[str],
        sampling: SamplingSettings,
        emit: Callable[[str, int], None],
        chat_id: str = "default",
    ) -> GenerationStats:
        """Stream a reply through ``emit(text, n_tokens)``; the text never contains a stop string."""
        started = time.perf_counter()
        restored = self.switch_chat(chat_id)
        tokens = self.tokenize(prompt)
        if len(tokens) >= self.n_ctx:
            raise EngineError(
                f"the conversation is {len(tokens)} tokens, longer than the context of "
                f"{self.n_ctx}: start a new chat or load the model with a larger context",
                "context",
            )
        reused, evaluated, stopped = self._evaluate_prompt(tokens)
        prompt_done = time.perf_counter()

        def stats(reason: StopReason, generated: int, first: float | None) -> GenerationStats:
            end = time.perf_counter()
            return GenerationStats(
                prompt_tokens=len(tokens), reused_tokens=reused, evaluated_tokens=evaluated,
                generated_tokens=generated, prompt_eval_s=prompt_done - started,
                decode_s=(end - first) if first else 0.0,
                ttft_s=(first - started) if first else end - started,
                stop_reason=reason, restored_chat=restored,
                threads=self.threads.report() if self.threads is not None else None,
            )

        if stopped:
            return stats("stopped", 0, None)
        chain = self._sampler(sampling)
        try:
            return self._decode_loop(chain, stop, sampling, emit, stats)
        finally:
            llama_cpp.llama_sampler_free(chain)

    def _decode_loop(
        self,
        chain: llama_cpp.llama_sampler_p,
        stop: Sequence[str],
        sampling: SamplingSettings,
        emit: Callable[[str, int], None],
        stats: Callable[[StopReason, int, float | None], GenerationStats],
    ) -> GenerationStats:
        ctx, vocab, one, batch = self.ctx, self.vocab, self._one, self._one_batch
        sample, is_eog, decode = llama_cpp.llama_sampler_sample, llama_cpp.llama_vocab_is_eog, llama_cpp.llama_decode
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopStrings(stop)
        generated = unsent = 0
        first: float | None = None
        reason: StopReason = "max_tokens"
        n_ctx = self.n_ctx
        threads = self.threads if self.threads is not None and self.threads.auto else None
        if threads is not None:
            threads.begin_decode()
        while generated < sampling.max_tokens:
            token = sample(chain, ctx, -1)
            if first is None:
                first = time.perf_counter()
            if not sampling.ignore_eos and is_eog(vocab, token):
                reason = "eos"
                break
            generated += 1
            unsent += 1
            text, hit = stops.feed(decoder.decode(self.piece(token)))
            if text or hit:
                emit(text, unsent)
                unsent = 0
            if hit:
                reason = "stop_string"
                break
            if self.stop_requested():
                reason = "stopped"
                break
            if generated >= sampling.max_tokens:
                break
            if len(self.cached) >= n_ctx:
                reason = "context_full"
                break
            one[0] = token
            code = decode(ctx, batch)
            if code != 0:
                raise EngineError(f"llama.cpp failed while generating (code {code})")
            self.cached.append(token)
            if threads is not None:
                threads.decoded()  # per-token time; may set new counts for the next call
        if reason != "stop_string":
            tail = stops.flush() + decoder.decode(b"", final=True)
            if tail or unsent:
                emit(tail, unsent)
        return stats(reason, generated, first)


def _rpc_used() -> bool:
    """Whether a remote machine was registered in this process (it stays registered)."""
    import sys

    module = sys.modules.get("app.engine.rpc_native")
    return bool(module and module.registered_endpoints())


def amx_cpu() -> bool:
    """Whether llama.cpp was built with AMX kernels and the CPU reports AMX tiles.

    llama.cpp's AMX weight buffers (Q4_0, Q4_1, Q8_0, K-quants) crash with a general-protection
    fault in the first prompt evaluation on such VMs (seen on a Firecracker guest of a Sapphire
    Rapids host), so Hearth loads without llama.cpp's extra buffer types there: plain CPU kernels,
    a little slower for prompts, never a crash."""
    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info():  # a build without AMX kernels
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return any(line.startswith("flags") and " amx_tile" in line for line in cpuinfo)
    except OSError:
        return False


def default_threads() -> int:
    """Physical cores, or the performance cores of a hybrid CPU (llama.cpp is slower on hyper-threads
    and efficiency cores), at least 1: the static count; "auto" starts from it (thread_start)."""
    return max(1, usable_cores().cores)
