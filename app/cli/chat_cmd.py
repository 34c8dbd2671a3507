"""``hearth chat``: talk to a model in the terminal; the reply streams to stdout as it is generated."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.catalog import load_catalog
from app.chats.store import ChatStore
from app.cli.prompt_cmd import add_remedy_arguments, chosen_remedy
from app.cli.terminal import SafeStream, safe_line
from app.conversation.conversation import Conversation
from app.engine.chat_format import resolve_chat_format
from app.engine.chat_session import ChatSession, plan_load
from app.engine.client import EngineClient
from app.engine.load_preferences import FLASH_ATTENTION, KV_CACHE_TYPES, load_preferences
from app.engine.offload import memory_advice
from app.engine.protocol import EngineError, parse_threads
from app.engine.rpc import parse_endpoints
from app.errors import HearthError
from app.formats.gguf_meta import read_gguf_metadata
from app.library.installed import resolve_model_path
from app.paths import app_dirs
from app.templates.prompt import Message, TemplateRefusal

AUTO = "auto"  # a flag given as auto: the planner's choice, over a saved preference


def _number_or_auto(unit: str, negative: str | None = None) -> Callable[[str], int | str]:
    """An argparse type: "auto", or a whole number of ``unit`` (refused with ``negative`` below 0, if given)."""
    def parse(text: str) -> int | str:
        if text == AUTO:
            return AUTO
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {unit} or 'auto'") from None
        if negative is not None and value < 0:
            raise argparse.ArgumentTypeError(negative)
        return value

    return parse


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
    parser.add_argument("--gpu-layers", type=_number_or_auto("layers", "GPU layers cannot be negative"),
                        default=None, metavar="N|auto",
                        help="layers to offload to the GPU (default: saved for this model in the window, "
                        "else auto)")
    parser.add_argument("--ctx", type=_number_or_auto("tokens"), metavar="N|auto",
                        help="context length (default: saved for this model in the window, else the model's, "
                        "capped by memory)")
    parser.add_argument("--max-tokens", type=int, help="longest reply in tokens")
    parser.add_argument("--temp", type=float, help="temperature (0 = greedy)")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable replies")
    parser.add_argument("--threads", type=threads_arg, metavar="N|auto",
                        help="CPU threads: a fixed count, or auto (default): start from the cores other "
                        "programs leave free, then adapt while replying")
    parser.add_argument("--batch", type=int, help="prompt evaluation batch size (default 512)")
    parser.add_argument("--flash-attn", choices=FLASH_ATTENTION,
                        help="flash attention (default: saved for this model, else auto)")
    parser.add_argument("--kv-cache", choices=KV_CACHE_TYPES,
                        help="KV cache type: q8_0 halves its memory (default: saved for this model, else f16)")
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
    conversation = open_conversation(args)
    try:
        sampling = conversation.sampling(
            chat_format.model.sampling if chat_format.model else None,
            {"temperature": args.temp, "seed": args.seed, "max_tokens": args.max_tokens},
        ).or_raise()
    except HearthError:
        conversation.store.close()
        raise
    extra = load_arguments(args, path)
    rpc = tuple(str(e) for e in parse_endpoints(args.rpc)) if args.rpc else ()
    try:
        settings, plan = plan_load(path, meta, rpc=rpc, **extra)
    except HearthError:
        conversation.store.close()
        raise
    if args.verbose:
        print(safe_line(f"{chat_format.model_name}: {plan}; context {settings.n_ctx}; "
                        f"KV cache {settings.kv_cache_type}; flash attention {settings.flash_attention}; "
                        f"prompt format {chat_format.label}"), file=sys.stderr)
    if args.prompt is not None:  # a template that refuses this conversation says so before the model loads
        try:
            conversation.build_prompt(chat_format, pending_user=args.prompt)
        except HearthError:
            conversation.store.close()
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
        session = ChatSession(client, chat_format, sampling, chat_id="cli", remedy=conversation.remedy)
        try:
            if args.prompt is not None:
                _answer(session, [Message("user", args.prompt)], args.verbose, conversation)
                return 0
            return _interactive(session, args.verbose, conversation)
        finally:
            conversation.store.close()


def load_arguments(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """plan_load's arguments: the load settings saved for this file in the window, each flag given over them."""
    preferences, problems = load_preferences(app_dirs().settings_file, path)
    for problem in problems:
        print(safe_line(f"hearth: warning: {problem}"), file=sys.stderr)
    extra = preferences.plan_arguments()
    if args.verbose and not preferences.is_auto:
        print(safe_line(f"Saved load settings for this file: {preferences.describe()}"), file=sys.stderr)
    for key, flag in (("ctx", args.ctx), ("gpu_layers", args.gpu_layers)):
        if flag is not None:
            extra[key] = None if flag == AUTO else flag
    for key, value in (("n_threads", args.threads), ("n_batch", args.batch), ("flash_attention", args.flash_attn),
                       ("kv_cache_type", args.kv_cache)):
        if value:
            extra[key] = value
    if args.mlock:
        extra["use_mlock"] = True
    if args.no_mmap:
        extra["use_mmap"] = False
    return extra


def open_conversation(args: argparse.Namespace) -> Conversation:
    """The chat `hearth chat` talks in: stored chat --chat ID, a new one, or (--no-save) a copy in memory.

    The same :class:`Conversation` as the window's, so the same chat builds the same prompt.
    """
    if args.no_save and args.chat is None:
        conversation = Conversation.detached(None, None)  # no chat file is opened at all
    elif args.no_save:
        with ChatStore.open_default() as stored:  # read once, copied to memory, closed
            conversation = Conversation.detached(stored, args.chat)
    else:
        store = ChatStore.open_default()
        try:
            conversation = Conversation.open(store, args.chat) if args.chat is not None else Conversation(store)
        except HearthError:
            store.close()
            raise
    if args.system is not None:  # a new chat keeps it; a continued one uses it for this session
        if conversation.chat is None:
            conversation.set_system_message(args.system)
        else:
            conversation.system_override = args.system
    conversation.remedy_override = chosen_remedy(args)
    return conversation


def _answer(session: ChatSession, history: list[Message], verbose: bool,
            conversation: Conversation | None = None) -> str:
    """Stream the reply to ``history`` (its last message is the user's). With a conversation, that
    message is saved first, the turns are the conversation's, and the reply is saved as it grows."""
    parts: list[str] = []
    status = "complete"
    sink = None
    out = SafeStream(sys.stdout)  # a model's reply must not drive the terminal (no ESC/OSC)
    if conversation is not None:
        name = session.chat_format.model_name
        conversation.add_user(history[-1].content, model_name=name)
        history = conversation.turns(session.chat_format.system_message)
        sink = conversation.start_reply(name, background=True)
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
        sink.finish(status, stats)
    if verbose and stats is not None:
        threads = f", {stats.threads.describe()}" if stats.threads is not None else ""
        print(f"[{stats.generated_tokens} tokens, {stats.decode_tps:.1f} tok/s, "
              f"first token {stats.ttft_s * 1000:.0f} ms, {stats.stop_reason}{threads}]", file=sys.stderr)
    return "".join(parts)


# remedy -> (what the template wants, what Hearth would do), for the question asked on a terminal
_ASK = {
    "fold_system": ("does not accept a system message", "fold it into your first message"),
    "merge_turns": ("wants user and assistant turns to alternate", "join consecutive messages of the same role"),
}
_DECLINED = {
    "fold_system": "While this chat has a system message the model refuses every message: answer yes next "
                   "time, or start again with --system '' and write the instructions into your message.",
    "merge_turns": "This chat has two messages of the same role in a row, and the model refuses every message "
                   "after them: answer yes next time, or start a new chat.",
}


def remedy_question(remedy: str) -> str:
    """``This model's template does not accept a system message. Fold it into ... and go on? [Y/n] ``"""
    parts = [_ASK[part] for part in remedy.split("+")]
    wants = " and ".join(want for want, _ in parts)
    if len(parts) == 1:
        does = f"{parts[0][1]} and go on"
    else:
        does = ", ".join(do.replace(" it ", " the system message ") for _, do in parts) + ", and go on"
    return f"This model's template {wants}. {does[0].upper()}{does[1:]}? [Y/n] "


def _accepted(session: ChatSession, conversation: Conversation, line: str) -> bool:
    """Whether the template takes the conversation with ``line`` added.

    On a terminal, a refusal with a remedy is a question: yes applies the remedy to this chat (it is
    remembered, as the window's button does); no leaves the chat as it was. Elsewhere the refusal is
    the error, naming the flag, as with -p.
    """
    try:
        conversation.build_prompt(session.chat_format, pending_user=line)
        return True
    except TemplateRefusal as exc:
        if exc.remedy is None or not sys.stdin.isatty():
            raise
        refusal = exc
    remedy = refusal.remedy
    assert remedy is not None
    print(safe_line(f"({refusal.reason})"), file=sys.stderr)
    try:
        answer = input(remedy_question(remedy))
    except EOFError:
        answer = "n"
    if answer.strip().lower() not in ("", "y", "yes"):
        print(safe_line(f"Not sent. {' '.join(_DECLINED[part] for part in remedy.split('+'))}"), file=sys.stderr)
        return False
    conversation.set_remedy(remedy)
    session.remedy = conversation.remedy
    return True


def _interactive(session: ChatSession, verbose: bool, conversation: Conversation) -> int:
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
        if _accepted(session, conversation, line):
            _answer(session, [Message("user", line)], verbose, conversation)
