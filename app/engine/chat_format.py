"""Which prompt template a model uses: the catalogue's, the GGUF file's own, or a labelled fallback."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from app.catalog.installed import read_conversion, variant_files
from app.catalog.model import Catalog, Model, Variant
from app.engine.reasoning import history_for_template
from app.errors import HearthError
from app.formats.gguf_meta import GGUFMetadata, read_gguf_metadata
from app.paths import app_dirs
from app.templates.prompt import Message, PromptTemplate, TemplateError, TemplateRefusal

FALLBACK_TEMPLATE_ID = "chatml"
TemplateSource = Literal["catalogue", "gguf", "fallback", "chosen"]

# End-of-turn markers worth stopping on when a GGUF's own template uses them.
_KNOWN_END_MARKERS = (
    "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>",
    "<|end_of_text|>", "<|END_OF_TURN_TOKEN|>",
)


class ModelNotFoundError(HearthError):
    """MODEL is neither a catalogue id nor an existing ``.gguf`` file."""


@dataclass(frozen=True)
class ChatFormat:
    """How to turn a conversation into this model's prompt, and where that rule came from."""

    template: PromptTemplate
    system_message: str | None
    stop: tuple[str, ...]
    label: str
    source: TemplateSource
    model_name: str
    bos_token: str = "<s>"
    eos_token: str = "</s>"
    model: Model | None = None
    path: Path | None = None

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``template, system_message, stop, label``."""
        return iter((self.template, self.system_message, self.stop, self.label))

    @property
    def origin_label(self) -> str:
        """Where the template came from, in words, for ``--show-format`` and the settings panel."""
        where = {"catalogue": "the catalogue", "gguf": "the model file (tokenizer.chat_template)",
                 "fallback": "a fallback (the file has none)", "chosen": "your choice"}[self.source]
        dialect = "Transformers-compatible Jinja" if self.template.dialect == "transformers" else "Hearth's Jinja"
        return f"{self.template.name}, from {where}; rendered with {dialect}"

    def render(self, messages: Iterable[Message], *, add_generation_prompt: bool = True,
               remedy: str | None = None, tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        """The exact prompt string; a template that fails raises TemplateError naming the model.

        Earlier replies' thinking is passed as this template expects (apart, as written, or
        left out). ``remedy`` ("fold_system", "merge_turns") reshapes the conversation first;
        when the template refuses the conversation, the TemplateRefusal says which remedy
        it would accept. ``tools`` (an API request's) go to a template that renders them.
        """
        history = self.template_messages(messages)
        if remedy:
            history = apply_remedy(history, remedy)
        try:
            return self._render(history, add_generation_prompt, tools)
        except TemplateRefusal as refusal:
            if remedy:
                raise
            raise self._with_remedy(refusal, history, add_generation_prompt, tools) from None

    def template_messages(self, messages: Iterable[Message]) -> list[Message]:
        """The messages as this template is given them (earlier thinking apart, as written, or left out)."""
        listed = list(messages)
        shaped = history_for_template([(m.role, m.content) for m in listed], self.template.jinja)
        return [Message(role, content, reasoning if reasoning is not None else original.reasoning)
                for (role, content, reasoning), original in zip(shaped, listed, strict=True)]

    def _render(self, history: list[Message], add_generation_prompt: bool,
                tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        return self.template.render(
            history,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            model_name=self.model_name,
            tools=tools or None,
        )

    def _with_remedy(self, refusal: TemplateRefusal, history: list[Message],
                     add_generation_prompt: bool, tools: Sequence[Mapping[str, Any]] | None) -> TemplateRefusal:
        singles = applicable_remedies(history)
        for remedy in [*singles, *(["+".join(singles)] if len(singles) > 1 else [])]:
            try:
                self._render(apply_remedy(history, remedy), add_generation_prompt, tools)
            except TemplateError:
                continue
            advice = " ".join(REMEDIES[part][0] for part in remedy.split("+"))
            return TemplateRefusal(
                f"{self.model_name}'s prompt template does not accept this conversation "
                f"({refusal.reason}). {advice}", refusal.reason, remedy)
        return TemplateRefusal(
            f"{self.model_name}'s prompt template does not accept this conversation ({refusal.reason}). "
            "Choose another prompt format for this model in its settings.", refusal.reason)


# remedy -> (what to tell the user, the short label of the action)
REMEDIES: dict[str, tuple[str, str]] = {
    "fold_system": ("It accepts the system message folded into your first message, as the model's "
                    "authors recommend: use that remedy (in the chat, the button; with the CLI, "
                    "--fold-system).", "Fold the system message into my first message"),
    "merge_turns": ("It wants user and assistant turns to alternate: consecutive messages of the same "
                    "role can be joined into one (in the chat, the button; with the CLI, --merge-turns).",
                    "Join consecutive messages"),
}


def applicable_remedies(history: list[Message]) -> list[str]:
    """The remedies that would change this conversation, in the order they are tried."""
    remedies = []
    if any(m.role == "system" for m in history):
        remedies.append("fold_system")
    roles = [m.role for m in history if m.role != "system"]
    if any(a == b for a, b in pairwise(roles)):
        remedies.append("merge_turns")
    return remedies


def remedy_label(remedy: str) -> str:
    """The words on the button that applies ``remedy`` (one, or several joined by "+")."""
    labels = [REMEDIES[part][1] for part in remedy.split("+")]
    return labels[0] if len(labels) == 1 else " and ".join([labels[0], labels[1][0].lower() + labels[1][1:]])


def apply_remedy(history: list[Message], remedy: str) -> list[Message]:
    """The conversation reshaped by ``remedy``: the system text folded into the first user
    message ("fold_system"), consecutive same-role messages joined ("merge_turns"), or
    several of them joined by "+", applied in that order."""
    if "+" in remedy:
        for part in remedy.split("+"):
            history = apply_remedy(history, part)
        return history
    if remedy == "fold_system":
        system = "\n\n".join(m.content for m in history if m.role == "system" and m.content)
        rest = [m for m in history if m.role != "system"]
        for index, message in enumerate(rest):
            if message.role == "user" and system:
                rest[index] = Message("user", f"{system}\n\n{message.content}")
                break
        return rest
    if remedy == "merge_turns":
        merged: list[Message] = []
        for message in history:
            if merged and merged[-1].role == message.role and message.role in ("user", "assistant"):
                merged[-1] = Message(message.role, f"{merged[-1].content}\n\n{message.content}",
                                     merged[-1].reasoning)
            else:
                merged.append(message)
        return merged
    raise ValueError(f"unknown remedy {remedy!r}")


def match_catalogue(path: Path, catalog: Catalog, models_dir: Path | None = None) -> tuple[Model, Variant] | None:
    """The catalogue variant a local file belongs to: by its conversion record (a GGUF converted
    from a catalogue GPTQ branch gives that branch), by its place in the models folder, else by
    its exact file name (a file imported from elsewhere keeps TheBloke's name)."""
    conversion = read_conversion(path)
    if conversion is not None:
        source = (conversion.repo, conversion.branch)
        for model, variant in catalog.variants():
            if variant.id == conversion.variant_id or (
                    variant.format == "gptq" and (variant.repo, variant.revision) == source):
                return model, variant
    models_dir = models_dir or app_dirs().models
    resolved = path.resolve()
    by_name = None
    for model, variant in catalog.variants():
        if not variant.runnable:
            continue
        for candidate in variant_files(models_dir, variant):
            if candidate.resolve() == resolved:
                return model, variant
        if by_name is None and path.name in (*variant.files, variant.join_to):
            by_name = (model, variant)
    return by_name


def _stop_for_gguf_template(source: str, eos_token: str | None) -> tuple[str, ...]:
    stops = [marker for marker in _KNOWN_END_MARKERS if marker in source]
    if eos_token and eos_token not in stops:
        stops.append(eos_token)
    return tuple(stops)


def _gguf_template(meta: GGUFMetadata, model_name: str) -> PromptTemplate:
    assert meta.chat_template is not None
    template = PromptTemplate(
        id="gguf",
        name=f"the chat template inside {meta.path.name}",
        jinja=meta.chat_template,
        stop=_stop_for_gguf_template(meta.chat_template, meta.eos_token),
        origin="gguf",
        source=str(meta.path),
        dialect="transformers",
    )
    try:
        template.compile()
    except TemplateError as exc:
        raise TemplateError(
            f"{model_name}: {exc}. Choose another prompt format for this model in its settings."
        ) from None
    return template


def _model_name(meta: GGUFMetadata | None, path: Path) -> str:
    if meta and meta.name:
        return f"{meta.name} ({path.name})"
    return path.name


def resolve_chat_format(
    model: str | Path,
    catalog: Catalog,
    *,
    models_dir: Path | None = None,
    template_override: str | None = None,
    meta: GGUFMetadata | None = None,
) -> ChatFormat:
    """Resolve MODEL (a catalogue id or a ``.gguf`` path) to its chat format.

    The rule: a catalogue model uses the catalogue's template (TheBloke's GGUFs carry
    none); otherwise the file's own ``tokenizer.chat_template`` (sandboxed: it is
    untrusted); otherwise ChatML, labelled as a fallback. ``template_override`` (a
    catalogue template id the user picked) beats all three.
    """
    text = str(model)
    catalogue_model: Model | None = None
    path: Path | None = None
    if not text.endswith(".gguf") and not Path(text).exists():
        try:
            catalogue_model = catalog.model(text)
        except KeyError:
            known = ", ".join(m.id for m in catalog.models)
            raise ModelNotFoundError(
                f"{text!r} is neither a .gguf file nor a catalogue model (known: {known})"
            ) from None
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"{path} does not exist (expected a .gguf model file)")
        meta = meta or read_gguf_metadata(path)
        matched = match_catalogue(path, catalog, models_dir)
        catalogue_model = matched[0] if matched else None

    bos = (meta.bos_token if meta else None) or "<s>"
    eos = (meta.eos_token if meta else None) or "</s>"
    if catalogue_model is not None:
        name = catalogue_model.name
    else:
        assert path is not None
        name = _model_name(meta, path)
    system = catalogue_model.system_message if catalogue_model else None

    def made(template: PromptTemplate, system: str | None, stop: tuple[str, ...], label: str,
             source: TemplateSource) -> ChatFormat:
        return ChatFormat(template, system, stop, label, source, model_name=name, bos_token=bos,
                          eos_token=eos, model=catalogue_model, path=path)

    if template_override:
        if template_override not in catalog.templates:
            known = ", ".join(sorted(catalog.templates))
            raise HearthError(f"no prompt format {template_override!r} (known: {known})")
        chosen = catalog.templates[template_override]
        return made(chosen, system, _stops(chosen.stop, catalogue_model, eos),
                    f"{chosen.name} (chosen by you)", "chosen")
    if catalogue_model is not None:
        template = catalogue_model.template
        return made(template, system, catalogue_model.stop_strings,
                    f"{template.name} (from the catalogue)", "catalogue")
    if meta is not None and meta.chat_template:
        template = _gguf_template(meta, name)
        return made(template, None, template.stop, "the model file's own chat template", "gguf")
    fallback = catalog.templates[FALLBACK_TEMPLATE_ID]
    return made(
        fallback, None, _stops(fallback.stop, None, eos),
        f"{fallback.name} (a guess: the file has no chat template; change it in the model settings)",
        "fallback",
    )


def _stops(template_stops: tuple[str, ...], model: Model | None, eos: str) -> tuple[str, ...]:
    stops = list(template_stops) + list(model.stop if model else ())
    if eos not in stops:
        stops.append(eos)
    return tuple(dict.fromkeys(stops))

