"""``hearth chat MODEL --endpoint URL``: the same terminal chat, through an OpenAI-compatible endpoint."""

from __future__ import annotations

import argparse
import sys

from app.cli.terminal import safe_line
from app.engine.protocol import LoadSettings
from app.remote.endpoints import EndpointStore, endpoint_for
from app.remote.engine import RemoteEngine
from app.remote.session import RemoteSession
from app.templates.prompt import Message


def run_remote(args: argparse.Namespace) -> int:
    """Chat with remote model MODEL at ``--endpoint`` (a URL, or the name of a saved endpoint)."""
    from app.cli.chat_cmd import _answer, _interactive, open_conversation

    saved = EndpointStore().find(args.endpoint)
    if saved is not None:
        endpoint = saved if not args.api_key else endpoint_for(saved.url, args.api_key, saved.name)
    else:
        endpoint = endpoint_for(args.endpoint, args.api_key)
    with RemoteEngine(endpoint) as engine:
        info = engine.load_model(LoadSettings(args.model))
        if args.verbose:
            print(safe_line(f"{info.name} at {endpoint.base_url}"), file=sys.stderr)
        # The same conversation as a local chat's (and the window's): history rule, system message, storage.
        conversation = open_conversation(args)
        try:
            sampling = conversation.sampling(None, {"temperature": args.temp, "seed": args.seed,
                                                    "max_tokens": args.max_tokens}).or_raise()
            session = RemoteSession(engine, args.model, sampling, chat_id="cli")
            if args.prompt is not None:
                _answer(session, [Message("user", args.prompt)], args.verbose, conversation)  # type: ignore[arg-type]
                return 0
            return _interactive(session, args.verbose, conversation)  # type: ignore[arg-type]
        finally:
            conversation.store.close()
