"""``hearth prompt`` with a file's own template: --show-format names its origin; refusals offer the remedy."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_prompt_cmd import hearth
from tests.engine.tiny_gguf import write_tiny_gguf

GEMMA = (Path(__file__).parents[1] / "engine" / "llama_templates" / "google-gemma-2-2b-it.jinja").read_text()


def test_show_format_says_the_template_came_from_the_file(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "gemma.gguf", chat_template=GEMMA, name="Gemma Tiny")
    result = hearth("prompt", str(path), "--user", "Hi", "--show-format")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    assert "the model file's own chat template" in result.stderr
    assert "source: gguf" in result.stderr and "Transformers-compatible" in result.stderr
    catalogue = hearth("prompt", "llama-2-13b-chat", "--user", "Hi", "--show-format")
    assert "source: catalogue" in catalogue.stderr and "from the catalogue" in catalogue.stderr
    fallback = hearth("prompt", str(write_tiny_gguf(tmp_path / "bare.gguf")), "--user", "Hi", "--show-format")
    assert "source: fallback" in fallback.stderr


def test_a_refused_system_message_is_one_line_naming_the_remedy(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "gemma.gguf", chat_template=GEMMA, name="Gemma Tiny")
    refused = hearth("prompt", str(path), "--system", "Be brief.", "--user", "Hi")
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hearth: error:")
    assert "System role not supported" in lines[0] and "--fold-system" in lines[0]
    folded = hearth("prompt", str(path), "--system", "Be brief.", "--user", "Hi", "--fold-system")
    assert folded.returncode == 0, folded.stderr
    assert folded.stdout == "<s><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"


def test_hearth_chat_says_so_before_loading_and_applies_the_remedy(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "gemma.gguf", chat_template=GEMMA, name="Gemma Tiny")
    refused = hearth("chat", str(path), "--system", "Be brief.", "--prompt", "Hi", "--no-save", "--ctx", "128")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "System role not supported" in refused.stderr and "--fold-system" in refused.stderr
    folded = hearth("chat", str(path), "--system", "Be brief.", "--prompt", "Hi", "--no-save", "--ctx", "128",
                    "--max-tokens", "4", "--fold-system")
    assert folded.returncode == 0, folded.stderr
