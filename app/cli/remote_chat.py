"""``hearth chat MODEL --endpoint URL``: the same terminal chat, through an OpenAI-compatible endpoint."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.chats.recorder import ChatRecorder
from app.cli.terminal import safe_line
from app.engine.protocol import LoadSettings, SamplingSettings
from app.engine.templates import Message
from app.remote.endpoints import EndpointStore, endpoint_for
from app.remote.engine import RemoteEngine
from app.remote.session import RemoteSession


def run_remote(args: argparse.Namespace) -> int:
    """Chat with remote model MODEL at ``--endpoint`` (a URL, or the name of a saved endpoint)."""
    from app.cli.chat_cmd import _answer, _interactive

    saved = EndpointStore().find(args.endpoint)
    if saved is not None:
        endpoint = saved if not args.api_key else endpoint_for(saved.url, args.api_key, saved.name)
    else:
        endpoint = endpoint_for(args.endpoint, args.api_key)
    values: dict[str, Any] = {k: v for k, v in (("temperature", args.temp), ("seed", args.seed),
                                                ("max_tokens", args.max_tokens)) if v is not None}
    sampling = SamplingSettings(**values)
    with RemoteEngine(endpoint) as engine:
        info = engine.load_model(LoadSettings(args.model))
        if args.verbose:
            print(safe_line(f"{info.name} at {endpoint.base_url}"), file=sys.stderr)
        recorder = ChatRecorder.start(model=info.name, chat_id=args.chat, save=not args.no_save,
                                      system_message=args.system)
        try:
            system = args.system if args.system is not None else recorder.system_message()
            history = [Message("system", system)] if system else []
            history += [m for m in recorder.history() if m.role != "system"]
            session = RemoteSession(engine, args.model, sampling, chat_id="cli")
            if args.prompt is not None:
                _answer(session, [*history, Message("user", args.prompt)], args.verbose, recorder)  # type: ignore[arg-type]
                return 0
            return _interactive(session, history, args.verbose, recorder)  # type: ignore[arg-type]
        finally:
            recorder.close()
