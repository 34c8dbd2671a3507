"""Entry point: ``hearth`` opens the GUI; ``hearth SUBCOMMAND`` runs the command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--engine-worker"]:
        # The bundled executable doubles as the llama.cpp worker process (see app.engine.client).
        from app.engine.worker import main as worker_main

        return worker_main()
    if args[:1] == ["--device-probe"]:
        # The bundled executable answers the GUI's "which GPUs can this build use" (app.catalog.devices).
        from app.catalog.devices import main as probe_main

        return probe_main()
    from app.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
