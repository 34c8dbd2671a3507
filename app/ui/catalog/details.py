"""The detail pane's text: every field of a variant, its model's prompt format, and what it needs."""

from __future__ import annotations

from html import escape

from app.catalog import Model, Variant
from app.catalog.converted_size import BITS_PER_WEIGHT, CANDIDATES_FOR_BITS, DEFAULT_TYPE_FOR_BITS, converted_size
from app.catalog.fit import FitReport
from app.catalog.installed import Conversion, InstallState
from app.engine.rpc import RemoteSurvey
from app.ui.theme import Theme
from app.units import human_size

GPTQ_LOADER = ("As it is: GPU loaders only (ExLlama, AutoGPTQ, Transformers). Converted by Hearth: llama.cpp "
               "(built into Hearth), CPU with GPU offload where available.")


def conversion_callout(model: Model, variant: Variant, alternative: Variant | None) -> str:
    """What "Download and convert for llama.cpp" does for this branch: exact or requantised, and the sizes."""
    converted = converted_size(variant, model.parameters)  # the type and size the fit verdict counts too
    result = converted.size_bytes
    scratch = model.parameters * 2
    alt = (
        f" Or run <b>{escape(alternative.label)}</b> ({human_size(alternative.size_bytes)}), "
        "already converted by its publisher." if alternative else ""
    )
    if not converted.exact:
        candidates = ", ".join(t.upper() for t in CANDIDATES_FOR_BITS.get(variant.bits, converted.types))
        what = (f"its GPTQ groups are in activation order, which no llama.cpp block can hold exactly, so Hearth "
                f"dequantises it, lets llama.cpp requantise it to each of {candidates}"
                f", measures each against the exact model and keeps the closest (about {human_size(result)}; "
                "a branch whose act order leaves the groups in place converts exactly)")
    else:
        what = (f"its GPTQ weights go as they are into {converted.type_label} blocks: <b>exact GPTQ weights</b>, "
                f"no second quantisation (about {human_size(result)})")
        if variant.bits < 4:
            smaller = DEFAULT_TYPE_FOR_BITS[variant.bits]
            small = int(model.parameters * BITS_PER_WEIGHT[smaller] / 8)
            what += (f"; that is about {human_size(max(result - variant.size_bytes, 0))} larger than the branch, "
                     f"{variant.bits}-bit values stored in 4-bit blocks. The smaller choice, "
                     f"<code>hearth convert {escape(variant.id)} --type {smaller}</code>, requantises to about "
                     f"{human_size(small)}; Hearth measures its quality during the exact conversion and the finished "
                     "card offers it as <b>Smaller file</b>")
    return (
        "llama.cpp cannot load GPTQ as it is, but Hearth can convert this branch into a GGUF on your "
        "machine: <b>Download and convert for llama.cpp</b> downloads the branch "
        f"({human_size(variant.size_bytes)}), then {what}. The result is measured against the exact F16 model "
        f"(KL divergence, top-1 agreement), which needs a temporary F16 copy of about {human_size(scratch)}.{alt}"
    )


def converted_callout(conversion: Conversion) -> str:
    """The converted file: type, size, mode (exact or requantised), measured quality, and other choices."""
    commit = f", commit <code>{escape(conversion.commit[:12])}</code>" if conversion.commit else ""
    text = (f"<b>Converted for llama.cpp</b> on this machine: a {escape(conversion.type_label)} GGUF "
            f"({human_size(conversion.size)}) made from this branch{commit}. Chat with it like any GGUF.")
    if conversion.mode:
        text += f"<br><b>{escape(conversion.mode[:1].upper() + conversion.mode[1:])}</b>"
        if conversion.quality is not None:
            q = conversion.quality
            text += (f": against the exact F16 model, mean KL divergence {q.kl_mean:.4g}, top-1 agreement "
                     f"{100 * q.top1:.1f}% ({q.tokens} tokens)")
        text += "."
    if conversion.choice:
        text += f"<br>Chosen by measurement: {escape(conversion.choice)}."
    for alternative in () if conversion.choice else conversion.alternatives:
        figures = f", {alternative.quality.summary}" if alternative.quality else ""
        text += (f"<br>Smaller choice: {escape(alternative.out_type.upper())}, {human_size(alternative.size)}"
                 f"{escape(figures)} (<code>--type {escape(alternative.out_type)}</code>).")
    return text


# What each GPTQ column means, in the words of TheBloke's model cards, shortened.
GPTQ_EXPLANATIONS = {
    "bits": "Bit width of the quantised weights. Fewer bits: smaller and faster, less accurate.",
    "group_size": "Weights share a scale per group of this many. Smaller groups are more accurate "
    "and use more VRAM; None means one group per row, the least VRAM.",
    "act_order": "Also called desc_act: quantise columns in order of importance. Better accuracy; "
    "some older GPTQ clients struggle with act order plus a group size.",
    "damp_percent": "A GPTQ quantisation parameter; 0.01 is the default, 0.1 gives slightly better accuracy.",
    "dataset": "Text used to calibrate the quantisation; not the model's training data.",
    "seq_len": "Length of the calibration sequences. It does not limit the model's own context.",
    "exllama": "Whether ExLlama, the fastest GPTQ loader, can load it (Llama models in 4-bit only).",
}


def remote_machines_html(remote: RemoteSurvey, theme: Theme) -> str:
    """Which remote machines count in the verdict (and their free memory), and why any other does not."""
    lines = [f"<code>{escape(str(m.endpoint))}</code>: {m.free_bytes / 1e9:.1f} GB free, counted"
             for m in remote.machines]
    if not remote.machines:
        lines.append("none answered, so the verdict is this machine's alone")
    lines += [f"<span style='color:{theme.bad}'><code>{escape(e.endpoint)}</code> not counted: "
              f"{escape(_without_name(str(e), e.endpoint))}</span>" for e in remote.failures]
    return "<br>".join(lines)


def _without_name(message: str, name: str) -> str:
    """``studio:50052: nothing is listening…`` -> ``nothing is listening…`` (the row names it already)."""
    return message[len(name) + 2:] if message.startswith(name + ": ") else message


def _row(label: str, value: str, hint: str = "", theme: Theme | None = None) -> str:
    muted = theme.text_muted if theme else "#777"
    hint_html = f"<br><span style='color:{muted}; font-size:small'>{escape(hint)}</span>" if hint else ""
    return (
        f"<tr><td style='padding:4px 12px 4px 0; color:{muted}; white-space:nowrap' valign='top'>"
        f"{escape(label)}</td><td style='padding:4px 0'>{value}{hint_html}</td></tr>"
    )


def _yes_no(value: bool | None) -> str:
    return "–" if value is None else ("Yes" if value else "No")


def _callout(text: str, colour: str, background: str) -> str:
    return (
        f"<table width='100%' cellpadding='10' style='margin:8px 0; background:{background}'>"
        f"<tr><td style='color:{colour}'>{text}</td></tr></table>"
    )


def variant_details_html(
    model: Model,
    variant: Variant,
    fit: FitReport | None,
    state: InstallState,
    theme: Theme,
    alternative: Variant | None = None,
    conversion: Conversion | None = None,
    remote: RemoteSurvey | None = None,
) -> str:
    """HTML for QTextBrowser (Qt's rich-text subset: tables, spans, pre). ``remote``: what the saved remote
    machines answered (None: not asked yet, or none saved)."""
    parts = [
        f"<h2 style='margin:0'>{escape(model.name)}</h2>",
        f"<p style='color:{theme.text_muted}; margin-top:2px'>{escape(model.creator)} · "
        f"{escape(model.parameters_label)} parameters · {escape(model.architecture)} · "
        f"{model.context_length:,} tokens of context · licence {escape(model.license)}</p>",
    ]
    if model.description:
        parts.append(f"<p>{escape(model.description)}</p>")
    parts.append(f"<h3>{escape(variant.label)}</h3>")
    if conversion is not None:
        parts.append(_callout(converted_callout(conversion), theme.text, theme.accent_soft))
    elif not variant.runnable:
        parts.append(_callout(conversion_callout(model, variant, alternative), theme.text, theme.warn_soft))
    if not variant.verified:
        parts.append(_callout(
            escape(variant.repo_note or "This repository has not been confirmed on the Hub yet."),
            theme.text, theme.warn_soft,
        ))
    rows = [_row("Repository", f"<code>{escape(variant.repo)}</code>", theme=theme)]
    if model.imported:
        rows.append(_row("Source", f"{escape(model.source_label)}: added from "
                         f"<code>{escape(model.imported_from or variant.repo)}</code>",
                         "In your own catalogue; “Remove from catalogue” takes it out again.", theme))
    if variant.format == "gptq":
        rows += [
            _row("Branch", f"<code>{escape(variant.revision)}</code>", theme=theme),
            _row("Bits", str(variant.bits), GPTQ_EXPLANATIONS["bits"], theme),
            _row("Group size", "None" if variant.group_size is None else str(variant.group_size),
                 GPTQ_EXPLANATIONS["group_size"], theme),
            _row("Act order", _yes_no(variant.act_order), GPTQ_EXPLANATIONS["act_order"], theme),
            _row("Damp %", "–" if variant.damp_percent is None else f"{variant.damp_percent:g}",
                 GPTQ_EXPLANATIONS["damp_percent"], theme),
            _row("GPTQ dataset", escape(variant.dataset or "–"), GPTQ_EXPLANATIONS["dataset"], theme),
            _row("Sequence length", "–" if variant.seq_len is None else f"{variant.seq_len:,}",
                 GPTQ_EXPLANATIONS["seq_len"], theme),
            _row("ExLlama", _yes_no(variant.exllama), GPTQ_EXPLANATIONS["exllama"], theme),
        ]
        if variant.made_with:
            rows.append(_row("Made with", escape(variant.made_with), theme=theme))
    else:
        rows += [
            _row("Quant", escape(variant.quant or ""), theme=theme),
            _row("Bits", str(variant.bits), theme=theme),
            _row("Files", "<br>".join(f"<code>{escape(f)}</code>" for f in variant.files), theme=theme),
        ]
        if variant.join_to:
            rows.append(_row("Joined into", f"<code>{escape(variant.join_to)}</code>",
                             "Uploaded in parts; Hearth joins them after download.", theme))
    rows.append(_row("Size", human_size(variant.size_bytes), theme=theme))
    if variant.description:
        rows.append(_row("Notes", escape(variant.description), theme=theme))
    status = f"Converted ({conversion.type_label})" if conversion else state.value.capitalize()
    rows.append(_row("Status", escape(status), theme=theme))
    if conversion is not None:
        rows.append(_row("Converted file", f"<code>{escape(str(conversion.path))}</code>", theme=theme))
        if conversion.quality_text:
            rows.append(_row("Conversion", escape(conversion.quality_text), theme=theme))
    parts.append("<table cellspacing='0'>" + "".join(rows) + "</table>")
    if variant.notes:
        items = "".join(f"<li>{escape(n)}</li>" for n in variant.notes)
        parts.append(_callout(f"<b>The model card and the Hub disagree</b><ul style='margin:0'>{items}</ul>",
                              theme.text, theme.warn_soft))

    parts.append("<h3>What it needs</h3>")
    loader = GPTQ_LOADER if variant.format == "gptq" else variant.loader
    need_rows = [_row("Loader", escape(loader), theme=theme)]
    if fit:
        colour = {"GOOD": theme.good, "TIGHT": theme.warn, "REMOTE": theme.good, "NO": theme.bad}[fit.fit.name]
        need_rows.append(_row("Memory", f"<span style='color:{colour}'><b>{escape(fit.fit.value)}</b></span> · "
                              f"{escape(fit.reason)}", theme=theme))
    else:
        need_rows.append(_row("Memory", "checking this machine…", theme=theme))
    if remote is not None and (remote.machines or remote.failures):
        need_rows.append(_row("Remote machines", remote_machines_html(remote, theme), theme=theme))
    parts.append("<table cellspacing='0'>" + "".join(need_rows) + "</table>")

    template = model.template
    parts.append(f"<h3>Prompt format: {escape(template.name)}</h3>")
    if template.id.endswith(("-card", "-gguf", "-plain")) and template.source:
        parts.append(f"<p style='color:{theme.text_muted}'>{escape(template.source[:1].upper() + template.source[1:])}"
                     "</p>")
    elif model.imported:
        parts.append(f"<p style='color:{theme.text_muted}'>The model card names this format: Hearth uses its own "
                     f"{escape(template.name)}, the same prompt as its curated models.</p>")
    parts.append(
        f"<pre style='background:{theme.code_bg}; padding:8px; white-space:pre-wrap'>"
        f"{escape(template.format)}</pre>"
    )
    if template.multi_turn:
        parts.append(f"<p style='color:{theme.text_muted}'>{escape(template.multi_turn)}</p>")
    stops = ", ".join(f"<code>{escape(s)}</code>" for s in model.stop_strings) or "–"
    parts.append(f"<p>Stops at: {stops}</p>")
    parts.append("<h3>Default system message</h3>")
    parts.append(
        f"<p>{escape(model.system_message)}</p>" if model.system_message
        else f"<p style='color:{theme.text_muted}'>None: the model card gives no system message.</p>"
    )
    return "\n".join(parts)
