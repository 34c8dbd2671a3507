"""``hearth chat``: talk to a model in the terminal; the reply streams to stdout as it is generated."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.catalog import load_catalog
from app.chats.recorder import ChatRecorder
from app.cli.prompt_cmd import add_remedy_arguments, chosen_remedy
from app.cli.terminal import SafeStream, safe_line
from app.engine.chat_format import resolve_chat_format
from app.engine.chat_session import ChatSession, plan_load, sampling_for
from app.engine.client import EngineClient
from app.engine.gguf_meta import read_gguf_metadata
from app.engine.model_files import resolve_model_path
from app.engine.offload import memory_advice
from app.engine.protocol import EngineError, parse_threads
from app.engine.rpc import parse_endpoints
from app.engine.templates import Message
from app.errors import HearthError


def _gpu_layers(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of layers or 'auto'") from None
    if value < 0:
        raise argparse.ArgumentTypeError("GPU layers cannot be negative")
    return value


def threads_arg(text: str) -> int | str:
    """``--threads``: "auto" or a whole number >= 1, as an argparse type."""
    try:
        return parse_threads(text)
    except HearthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="chat with a model in the terminal",
        description="Load MODEL (a .gguf file or an installed catalogue model) in Hearth's engine "
        "and stream its reply to PROMPT. Without -p, chat interactively (an empty line or "
        "Ctrl-D ends; Ctrl-C stops a reply).",
    )
    parser.add_argument("model", metavar="MODEL", help="a .gguf file or an installed catalogue model id")
    parser.add_argument("-p", "--prompt", help="one message to answer, then exit")
    parser.add_argument("--system", help="system message (default: the catalogue's for this model)")
    parser.add_argument("--gpu-layers", type=_gpu_layers, default=None, metavar="N|auto",
                        help="layers to offload to the GPU (default auto)")
    parser.add_argument("--ctx", type=int, help="context length (default: the model's, capped by memory)")
    parser.add_argument("--max-tokens", type=int, help="longest reply in tokens")
    parser.add_argument("--temp", type=float, help="temperature (0 = greedy)")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable replies")
    parser.add_argument("--threads", type=threads_arg, metavar="N|auto",
                        help="CPU threads: a fixed count, or auto (default): start from the cores other "
                        "programs leave free, then adapt while replying")
    parser.add_argument("--batch", type=int, help="prompt evaluation batch size (default 512)")
    parser.add_argument("--flash-attn", choices=("auto", "on", "off"), help="flash attention (default auto)")
    parser.add_argument("--kv-cache", choices=("f16", "q8_0", "q4_0"),
                        help="KV cache type: q8_0 halves its memory (default f16)")
    parser.add_argument("--mlock", action="store_true", help="lock the model in RAM")
    parser.add_argument("--no-mmap", action="store_true", help="read the model into RAM instead of mapping it")
    parser.add_argument("--template", metavar="ID", help="use this catalogue prompt format")
    parser.add_argument("--verbose", action="store_true", help="print the load plan and speed on stderr")
    parser.add_argument("--no-save", action="store_true",
                        help="do not record this conversation in the chat history")
    parser.add_argument("--chat", type=int, metavar="ID",
                        help="continue stored chat ID (see `hearth chats list`)")
    parser.add_argument("--rpc", metavar="HOST:PORT[,HOST:PORT...]",
                        help="spread the model's layers over these machines running `hearth rpc-server` "
                        "(in proportion to their free memory)")
    parser.add_argument("--endpoint", metavar="URL|NAME",
                        help="chat through this OpenAI-compatible server (MODEL is its model id)")
    parser.add_argument("--api-key", metavar="KEY", help="the endpoint's API key")
    add_remedy_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.endpoint:
        from app.cli.remote_chat import run_remote

        return run_remote(args)
    catalog = load_catalog()
    path = resolve_model_path(args.model, catalog)
    meta = read_gguf_metadata(path)
    chat_format = resolve_chat_format(path, catalog, template_override=args.template, meta=meta)
    recorder = ChatRecorder.start(model=chat_format.model_name, chat_id=args.chat,
                                  save=not args.no_save, system_message=args.system)
    stored_system = recorder.system_message()
    system = args.system if args.system is not None else (stored_system or chat_format.system_message)
    sampling = sampling_for(chat_format.model, temperature=args.temp, seed=args.seed,
                            max_tokens=args.max_tokens)
    extra: dict[str, Any] = {
        key: value for key, value in (
            ("n_threads", args.threads), ("n_batch", args.batch), ("flash_attention", args.flash_attn),
            ("kv_cache_type", args.kv_cache),
        ) if value
    }
    if args.mlock:
        extra["use_mlock"] = True
    if args.no_mmap:
        extra["use_mmap"] = False
    rpc = tuple(str(e) for e in parse_endpoints(args.rpc)) if args.rpc else ()
    settings, plan = plan_load(path, meta, gpu_layers=args.gpu_layers, ctx=args.ctx, rpc=rpc, **extra)
    if args.verbose:
        print(safe_line(f"{chat_format.model_name}: {plan}; context {settings.n_ctx}; "
                        f"prompt format {chat_format.label}"), file=sys.stderr)
    history = [Message("system", system)] if system else []
    history += [m for m in recorder.history() if m.role != "system"]
    if args.prompt is not None:  # a template that refuses this conversation says so before the model loads
        try:
            chat_format.render([*history, Message("user", args.prompt)], remedy=chosen_remedy(args))
        except HearthError:
            recorder.close()
            raise
    with EngineClient() as client:
        try:
            info = client.load_model(settings)
        except EngineError as exc:
            if exc.kind == "memory":
                raise HearthError(f"{exc} ({memory_advice(plan)})") from None
            raise
        if info.split:
            print(safe_line(f"{chat_format.model_name}: {info.split}"), file=sys.stderr)
        if args.verbose and info.threads is not None:
            print(info.threads.describe(), file=sys.stderr)
        session = ChatSession(client, chat_format, sampling, chat_id="cli", remedy=chosen_remedy(args))
        try:
            if args.prompt is not None:
                _answer(session, [*history, Message("user", args.prompt)], args.verbose, recorder)
                return 0
            return _interactive(session, history, args.verbose, recorder)
        finally:
            recorder.close()


def _answer(session: ChatSession, history: list[Message], verbose: bool,
            recorder: ChatRecorder | None = None) -> str:
    parts: list[str] = []
    status = "complete"
    sink = None
    out = SafeStream(sys.stdout)  # a model's reply must not drive the terminal (no ESC/OSC)
    if recorder is not None:
        recorder.user(history[-1].content)
        sink = recorder.reply()
    try:
        for text in session.reply(history):
            parts.append(text)
            if sink is not None:
                sink.append(text)
            out.write(text)
            out.flush()
    except KeyboardInterrupt:
        status = "stopped"
        sys.stdout.write(" [stopped]")
    except BaseException:
        if sink is not None:
            sink.finish("error")
        raise
    out.close()
    sys.stdout.write("\n")
    sys.stdout.flush()
    stats = session.last_stats
    if sink is not None:
        sink.finish(status, tokens=stats.generated_tokens if stats else None,
                    tokens_per_s=round(stats.decode_tps, 1) if stats else None)
    if verbose and stats is not None:
        threads = f", {stats.threads.describe()}" if stats.threads is not None else ""
        print(f"[{stats.generated_tokens} tokens, {stats.decode_tps:.1f} tok/s, "
              f"first token {stats.ttft_s * 1000:.0f} ms, {stats.stop_reason}{threads}]", file=sys.stderr)
    return "".join(parts)


def _interactive(session: ChatSession, history: list[Message], verbose: bool,
                 recorder: ChatRecorder | None = None) -> int:
    print(safe_line(f"Chatting with {session.chat_format.model_name}. An empty line or Ctrl-D ends."),
          file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        if not line.strip():
            return 0
        history.append(Message("user", line))
        reply = _answer(session, history, verbose, recorder)
        history.append(Message("assistant", reply))
