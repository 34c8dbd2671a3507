"""The detail pane's text: every field of a variant, its model's prompt format, and what it needs."""

from __future__ import annotations

from html import escape

from app.catalog import Model, Variant
from app.catalog.fit import FitReport
from app.catalog.installed import Conversion, InstallState
from app.cli.table import human_size
from app.ui.theme import Theme

# Bits per weight of the GGUF Hearth writes by default for each GPTQ bit width (llama.cpp's figures).
_CONVERTED_BITS_PER_WEIGHT = {2: ("Q3_K_M", 3.95), 3: ("Q3_K_M", 3.95), 4: ("Q4_K_M", 4.9), 8: ("Q8_0", 8.5)}
GPTQ_LOADER = ("As it is: GPU loaders only (ExLlama, AutoGPTQ, Transformers). Converted by Hearth: llama.cpp "
               "(built into Hearth), CPU with GPU offload where available.")


def conversion_callout(model: Model, variant: Variant, alternative: Variant | None) -> str:
    """What "Download and convert for llama.cpp" does for this branch, with the disk it needs."""
    quant, bits_per_weight = _CONVERTED_BITS_PER_WEIGHT.get(variant.bits, ("Q4_K_M", 4.9))
    result = int(model.parameters * bits_per_weight / 8)
    scratch = model.parameters * 2
    alt = (
        f" Or run <b>{escape(alternative.label)}</b> ({human_size(alternative.size_bytes)}), "
        "already converted by its publisher." if alternative else ""
    )
    return (
        "llama.cpp cannot load GPTQ as it is, but Hearth can convert this branch into a GGUF on your "
        "machine: <b>Download and convert for llama.cpp</b> downloads the branch "
        f"({human_size(variant.size_bytes)}), then writes a {quant} GGUF beside it (about "
        f"{human_size(result)}; a temporary F16 copy of about {human_size(scratch)} is needed while "
        f"converting).{alt}"
    )


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
) -> str:
    """HTML for QTextBrowser (Qt's rich-text subset: tables, spans, pre)."""
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
        commit = f", commit <code>{escape(conversion.commit[:12])}</code>" if conversion.commit else ""
        parts.append(_callout(
            f"<b>Converted for llama.cpp</b> on this machine: a {escape(conversion.type_label)} GGUF "
            f"({human_size(conversion.size)}) made from this branch{commit}. Chat with it like any GGUF.",
            theme.text, theme.accent_soft,
        ))
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
    parts.append("<table cellspacing='0'>" + "".join(rows) + "</table>")
    if variant.notes:
        items = "".join(f"<li>{escape(n)}</li>" for n in variant.notes)
        parts.append(_callout(f"<b>The model card and the Hub disagree</b><ul style='margin:0'>{items}</ul>",
                              theme.text, theme.warn_soft))

    parts.append("<h3>What it needs</h3>")
    loader = GPTQ_LOADER if variant.format == "gptq" else variant.loader
    need_rows = [_row("Loader", escape(loader), theme=theme)]
    if fit:
        colour = {"GOOD": theme.good, "TIGHT": theme.warn, "NO": theme.bad}[fit.fit.name]
        need_rows.append(_row("Memory", f"<span style='color:{colour}'><b>{escape(fit.fit.value)}</b></span> · "
                              f"{escape(fit.reason)}", theme=theme))
    else:
        need_rows.append(_row("Memory", "checking this machine…", theme=theme))
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
