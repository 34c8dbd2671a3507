"""The environment variables Hearth honours, listed at the end of ``hearth --help``."""

from __future__ import annotations

import textwrap

# Every variable that the code (or huggingface_hub/httpx2 underneath it) actually reads.
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("HEARTH_HOME", "keep settings, models, chats and caches in this one folder (portable installs)"),
    ("HEARTH_MODELS_DIR", "where downloaded and imported models go (default: DATA/models)"),
    ("HEARTH_CATALOG", "use this models_catalog.json instead of the bundled one"),
    ("HEARTH_HARDWARE", "describe the machine instead of detecting it, e.g. 'ram=16GB,vram=8GB'"),
    ("HEARTH_THEME", "light or dark instead of following the system (the window's Theme menu wins)"),
    ("HEARTH_DIRECT_RECV", "0 turns off reading download bodies straight from the socket"),
    ("HEARTH_REUSE_HF_CACHE", "0 turns off reusing files already in the Hugging Face cache"),
    ("HEARTH_RESUMABLE_SHA256", "0: do not save the running checksum through OpenSSL (a resumed download "
     "is hashed again from disk)"),
    ("HEARTH_HUB_DEADLINE", "seconds one file listing or HEAD request may take in all (default 30)"),
    ("HEARTH_HUB_MIN_RATE", "bytes per second a download must average over the window, else it stops with a "
     "message and keeps its bytes (default 1024; 0 turns the rule off)"),
    ("HEARTH_HUB_RATE_WINDOW", "that window in seconds (default 60)"),
    ("HEARTH_WINDOWS_NAMES", "1: refuse Hub file names that Windows cannot store, on every system"),
    ("HEARTH_DEBUG", "1: an unexpected error shows its Python traceback instead of one line"),
    ("HEARTH_TEMPLATE_ISOLATION", "0 renders model files' chat templates in Hearth's own process (still "
     "sandboxed and bounded) instead of a child process that is stopped at its limits"),
    ("HF_TOKEN", "Hugging Face access token for gated and private repos (else the one `hf auth login` "
     "or Hearth's Sign in stored)"),
    ("HF_HOME", "huggingface_hub's folder (token, cache; default ~/.cache/huggingface)"),
    ("HF_HUB_CACHE", "the Hugging Face cache whose files are reused instead of downloaded again "
     "(default HF_HOME/hub)"),
    ("HF_ENDPOINT", "a Hub mirror instead of https://huggingface.co"),
    ("HF_HUB_OFFLINE", "1: never contact the Hub (installed models keep working)"),
    ("HTTPS_PROXY", "proxy for Hub downloads (NO_PROXY: hosts reached directly)"),
    ("SSL_CERT_FILE", "trust the certificates in this file (a company proxy or mirror)"),
)


def epilog(width: int = 100) -> str:
    """The "environment variables" section of ``hearth --help``."""
    lines = ["environment variables:"]
    for name, meaning in ENVIRONMENT:
        wrapped = textwrap.wrap(meaning, max(width - 27, 40))
        lines.append(f"  {name:<25}{wrapped[0]}")
        lines.extend(f"  {'':<25}{rest}" for rest in wrapped[1:])
    lines += ["", "`hearth FILE.gguf` opens the window with that model (or hands it to the running window).",
              "Shell completion: `hearth --print-completion bash > ~/.local/share/bash-completion/completions/hearth`"
              " (or zsh)."]
    return "\n".join(lines)
