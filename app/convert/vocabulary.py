"""A branch's GGUF vocabulary: SentencePiece ``tokenizer.model`` (parsed here) or ``tokenizer.json``."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.convert.errors import ConvertError

# Token types, numbered alike in sentencepiece_model.proto and GGUF (gguf.TokenType).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


@dataclass
class Vocabulary:
    """Tokens in id order with their scores and types, as llama.cpp's ``llama`` (SentencePiece) tokenizer reads them."""

    tokens: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    add_space_prefix: bool = True
    source: str = ""

    def append(self, text: str, score: float, kind: int) -> None:
        self.tokens.append(text)
        self.scores.append(score)
        self.types.append(kind)

    def __len__(self) -> int:
        return len(self.tokens)


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field of one protobuf message."""
    pos, end = 0, len(data)

    def varint() -> int:
        nonlocal pos
        result = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    while pos < end:
        key = varint()
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value = varint()
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length = varint()
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("message ends inside a field")
        yield number, wire, value


def read_sentencepiece(path: Path) -> Vocabulary:
    """Pieces, scores and types of a SentencePiece model file (ModelProto), plus ``add_dummy_prefix``."""
    vocab = Vocabulary(source=path.name)
    try:
        for number, wire, value in _fields(path.read_bytes()):
            if number == 1 and wire == 2:  # repeated SentencePiece pieces
                piece, score, kind = "", 0.0, NORMAL
                for sub, sub_wire, sub_value in _fields(value):
                    if sub == 1 and sub_wire == 2:
                        piece = sub_value.decode("utf-8")
                    elif sub == 2 and sub_wire == 5:
                        (score,) = struct.unpack("<f", sub_value)
                    elif sub == 3 and sub_wire == 0:
                        kind = int(sub_value)
                vocab.append(piece, score, kind)
            elif number == 3 and wire == 2:  # NormalizerSpec
                for sub, sub_wire, sub_value in _fields(value):
                    if sub == 3 and sub_wire == 0:
                        vocab.add_space_prefix = bool(sub_value)
    except OSError as exc:
        raise ConvertError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, IndexError, UnicodeDecodeError, struct.error):
        raise ConvertError(f"{path.name} is not a SentencePiece model; download the branch again") from None
    if not vocab.tokens:
        raise ConvertError(f"{path.name} holds no tokens; download the branch again")
    return vocab


def read_tokenizer_json(path: Path) -> Vocabulary:
    """A SentencePiece-style BPE vocabulary (byte fallback, as Llama 2 and Mistral ship) from ``tokenizer.json``.

    Scores are minus the token id: SentencePiece BPE numbers pieces in merge order, which is the
    order llama.cpp's tokenizer merges by score.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model = data["model"]
        pieces: dict[str, int] = model["vocab"]
    except OSError as exc:
        raise ConvertError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError):
        raise ConvertError(f"{path.name} is not a tokenizer.json with a vocabulary; "
                           "download the branch again") from None
    if model.get("type") != "BPE" or not model.get("byte_fallback", False):
        raise ConvertError(f"{path.name} is a {model.get('type')} tokenizer without SentencePiece byte fallback; "
                           "Hearth converts SentencePiece vocabularies (tokenizer.model, or Llama 2/Mistral style "
                           "tokenizer.json) only")
    special = {int(t["id"]) for t in data.get("added_tokens", []) if t.get("special")}
    by_id = {index: text for text, index in pieces.items()}
    for token in data.get("added_tokens", []):
        by_id.setdefault(int(token["id"]), token["content"])
    vocab = Vocabulary(source=path.name)
    vocab.add_space_prefix = _prepends_space(data)
    for index in range(max(by_id) + 1):
        text = by_id.get(index)
        if text is None:
            vocab.append(f"[PAD{index}]", -1000.0, UNUSED)
        elif index in special:
            vocab.append(text, 0.0, UNKNOWN if text == model.get("unk_token") else CONTROL)
        elif _BYTE_PIECE.fullmatch(text):
            vocab.append(text, 0.0, BYTE)
        elif text not in pieces:
            vocab.append(text, -1000.0, USER_DEFINED)
        else:
            vocab.append(text, -float(index), NORMAL)
    return vocab


def _prepends_space(data: dict[str, Any]) -> bool:
    """Whether the tokenizer puts "▁" before the text, as SentencePiece's add_dummy_prefix does."""
    text = json.dumps([data.get("normalizer"), data.get("pre_tokenizer")])
    return '"Prepend"' in text or '"prepend_scheme": "always"' in text or '"add_prefix_space": true' in text


def load_vocabulary(folder: Path, n_vocab: int) -> Vocabulary:
    """The branch's vocabulary, with added tokens placed and padded to the embedding's ``n_vocab`` rows."""
    if (folder / "tokenizer.model").is_file():
        vocab = read_sentencepiece(folder / "tokenizer.model")
    elif (folder / "tokenizer.json").is_file():
        vocab = read_tokenizer_json(folder / "tokenizer.json")
    else:
        raise ConvertError(f"{folder} has no tokenizer.model or tokenizer.json; download the whole branch")
    _place_added_tokens(folder, vocab)
    if len(vocab) > n_vocab:
        raise ConvertError(f"the tokenizer has {len(vocab)} tokens but the model's embedding has {n_vocab} rows; "
                           "the tokenizer files belong to another model")
    while len(vocab) < n_vocab:
        vocab.append(f"[PAD{len(vocab)}]", -1000.0, UNUSED)
    return vocab


def _place_added_tokens(folder: Path, vocab: Vocabulary) -> None:
    """Tokens from ``added_tokens.json`` and ``tokenizer_config.json``'s ``added_tokens_decoder``."""
    added: dict[int, tuple[str, bool]] = {}
    for name in ("added_tokens.json", "tokenizer_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ConvertError(f"{name} is not valid JSON; download the branch again") from None
        if name == "added_tokens.json":
            added.update({int(index): (text, False) for text, index in data.items()})
        else:
            for index, token in (data.get("added_tokens_decoder") or {}).items():
                added[int(index)] = (token["content"], bool(token.get("special")))
    for index in sorted(added):
        text, special = added[index]
        kind = CONTROL if special else USER_DEFINED
        while len(vocab) < index:
            vocab.append(f"[PAD{len(vocab)}]", -1000.0, UNUSED)
        if index == len(vocab):
            vocab.append(text, -1000.0, kind)
        elif vocab.types[index] not in (UNKNOWN, CONTROL, BYTE):
            vocab.tokens[index] = text
            vocab.types[index] = kind
