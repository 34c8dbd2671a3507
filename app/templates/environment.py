"""Jinja environments for chat templates: Transformers' own (for files from the Hub) and Hearth's, both bounded.

A chat template inside a GGUF was written for ``transformers.apply_chat_template``: it
expects ``trim_blocks``/``lstrip_blocks``, lenient undefined variables, ``{% break %}``,
``raise_exception``, ``strftime_now``, a ``tojson`` that does not escape HTML and a
``{% generation %}`` tag. :func:`hf_environment` reproduces that environment option for
option (``transformers.utils.chat_template_utils._cached_compile_jinja_template`` is the
reference), still in Jinja's immutable sandbox (CVE-2024-34359).

Both environments are bounded (a template is untrusted code): every operation that can
make something large in one step is checked before it runs (ranges, ``*``, ``+``, ``~``,
``%`` and ``str.format`` widths, padding, ``join``, ``replace``, ``lipsum``, big powers),
and :func:`render_bounded` runs the template under a tracer that stops it at its time
limit, at a memory limit and at an output cap, with one :class:`RenderLimitError` line.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import time
import types
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.utils
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, SecurityError

# A prompt longer than this many characters (about a million tokens) is not a prompt.
MAX_OUTPUT_CHARS = 4_000_000
MAX_SOURCE_CHARS = 1_000_000  # real chat templates are under 40 kB
MAX_ITEMS = 1_000_000  # longest list or tuple one operation may build
MAX_WIDTH = 10_000  # widest padding, field width or precision
MAX_RANGE = 100_000  # as Jinja's sandbox
MAX_INT_BITS = 100_000  # a result of * or ** larger than this is refused
TIME_LIMIT_S = 3.0
MEMORY_LIMIT_BYTES = 192 * 1024 * 1024
_MEMORY_CHECK_S = 0.005


class RenderLimitError(SecurityError):
    """A template went past one of the bounds (time, memory, output or a single operation)."""


def _too_long(what: str, size: int, limit: int) -> RenderLimitError:
    return RenderLimitError(f"{what} of {size:,} would pass the limit of {limit:,}")


def _check_text(size: int, what: str = "a string") -> None:
    if size > MAX_OUTPUT_CHARS:
        raise _too_long(what, size, MAX_OUTPUT_CHARS)


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and not isinstance(width, bool) and abs(width) > MAX_WIDTH:
        raise _too_long(what, abs(width), MAX_WIDTH)


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[diouxXeEfFgGcrsa%]")
_FORMAT_NUMBERS = re.compile(r"\d+")


def _check_percent_format(text: str) -> None:
    """``'%999999999d' % 1`` would build a gigabyte: refuse widths and precisions past MAX_WIDTH."""
    for match in _PERCENT_SPEC.finditer(text):
        for group in match.groups():
            if group == "*":
                raise RenderLimitError("a '*' width in a % format is not allowed in a chat template")
            if group:
                _check_width(int(group), "a % format width")


def _check_format_spec(spec: str) -> None:
    for number in _FORMAT_NUMBERS.findall(spec):
        if len(number) > 6:
            raise _too_long("a format width", 10 ** min(len(number) - 1, 99), MAX_WIDTH)
        _check_width(int(number), "a format width")


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


def _checked_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        for seq, count in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(count, int):
                total = size * max(count, 0)
                if isinstance(seq, str):
                    _check_text(total, "a repeated string")
                elif total > MAX_ITEMS:
                    raise _too_long("a repeated list", total, MAX_ITEMS)
        bits = left.bit_length() + right.bit_length() if isinstance(left, int) and isinstance(right, int) else 0
        if bits > MAX_INT_BITS:
            raise _too_long("a product (bits)", bits, MAX_INT_BITS)
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            bits = max(left.bit_length(), 1) * right
            if abs(left) > 1 and bits > MAX_INT_BITS:
                raise _too_long("a power (bits)", bits, MAX_INT_BITS)
    elif op == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None:
            if isinstance(left, str):
                _check_text(a + b)
            elif a + b > MAX_ITEMS:
                raise _too_long("a list", a + b, MAX_ITEMS)
    elif op == "%" and isinstance(left, str):
        _check_percent_format(left)


_PAD_METHODS = {"center": "a centred width", "ljust": "a padding width", "rjust": "a padding width",
                "zfill": "a zero-fill width", "expandtabs": "a tab size"}


class _LimitedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with field widths and precisions bounded."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_format_spec(format_spec)
        return super().format_field(value, format_spec)


class _LimitedCodeGenerator(CodeGenerator):
    """Jinja's code generator, but ``a ~ b`` goes through the environment's bounded join."""

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox plus a size check before every operation that can grow data."""

    code_generator_class = _LimitedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.globals["lipsum"] = _bounded_lipsum
        for name in ("center", "indent", "format", "join", "replace", "slice", "batch"):
            self.filters[name] = _guarded_filter(name, self.filters[name])

    def bounded_concat(self, values: tuple[Any, ...]) -> str:
        parts = [str(value) for value in values]
        _check_text(sum(map(len, parts)))
        return "".join(parts)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _checked_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in (
                "format", "format_map"):
            return None
        text = value.__self__
        if not isinstance(text, str) or isinstance(text, jinja2.utils.markupsafe.Markup):
            return super().wrap_str_format(value)
        formatter = _LimitedFormatter(self)
        is_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                result = str(formatter.vformat(text, (), args[0]))
            else:
                result = str(formatter.vformat(text, args, kwargs))
            _check_text(len(result))
            return result

        return wrapper

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(getattr(__obj, "__self__", None), str):
            text = str(__obj.__self__)
            name = __obj.__name__
            if name in _PAD_METHODS:
                _check_width(args[0] if args else kwargs.get("width", kwargs.get("tabsize", 0)), _PAD_METHODS[name])
            elif name == "join" and args:
                items = list(args[0])
                _check_text(sum(len(i) for i in items if isinstance(i, str)) + len(text) * len(items))
                args = (items, *args[1:])
            elif name == "replace" and len(args) >= 2:
                _check_replace(text, args[0], args[1])
        return super().call(__context, __obj, *args, **kwargs)


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = len(text) + 1 if not old else text.count(old)
        _check_text(len(text) + hits * max(len(new) - len(old), 0))


def _guarded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a builtin filter with a size check; keeps Jinja's pass_* marker."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        # Filters marked pass_eval_context/pass_environment get that first; skip it.
        offset = 1 if getattr(original, "jinja_pass_arg", None) else 0
        value, rest = (args[offset] if len(args) > offset else None), args[offset + 1:]
        if name == "indent":
            _check_width(rest[0] if rest else kwargs.get("width", 4), "an indent width")
        elif name == "format" and isinstance(value, str):
            _check_percent_format(value)
        elif name == "join" and value is not None:
            items = list(value)
            separator = rest[0] if rest else kwargs.get("d", "")
            _check_text(sum(len(str(i)) for i in items) + len(str(separator)) * len(items))
            args = (*args[:offset], items, *rest)
        elif name == "replace" and len(rest) >= 2:
            _check_replace(str(value), rest[0], rest[1])
        elif name in ("slice", "batch"):
            count = rest[0] if rest else kwargs.get("slices", kwargs.get("linecount", 1))
            if isinstance(count, int) and count > MAX_RANGE:
                raise _too_long(f"a {name} count", count, MAX_RANGE)
        elif name == "center":
            _check_width(rest[0] if rest else kwargs.get("width", 80), "a centred width")
        result = original(*args, **kwargs)
        if isinstance(result, str):
            _check_text(len(result))
        return result

    if hasattr(original, "jinja_pass_arg"):
        guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return guarded


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise _too_long("a range", len(result), MAX_RANGE)
    return result


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if n > 100 or max > 1000:
        raise RenderLimitError("lipsum() is limited to 100 paragraphs of at most 1,000 words")
    return str(jinja2.utils.generate_lorem_ipsum(n=n, html=html, min=min, max=max))


# ---- Transformers' environment ---------------------------------------------------------------


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}``: Transformers marks assistant text with it; it renders its body."""

    tags = {"generation"}  # noqa: RUF012 - Jinja's own API

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Callable[[], str]) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    raise TemplateRefusedError(message)


class TemplateRefusedError(jinja2.TemplateError):
    """The template itself refused the conversation (``raise_exception``)."""


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    _check_width(indent, "a JSON indent")
    result = json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    _check_text(len(result))
    return result


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


class _TemplateDict:
    """``dict(...)`` for templates, without attribute access to the dict type (as Transformers)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    """``namespace(...)`` refusing underscore names (as Transformers)."""

    def __init__(*args: Any, **kwargs: Any) -> None:
        self, rest = args[0], args[1:]
        attrs = dict(*rest, **kwargs)
        for name in attrs:
            _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"a chat template cannot store {name!r} on a namespace")


def hf_environment() -> BoundedSandbox:
    """The environment ``transformers`` renders chat templates in, bounded."""
    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True,
                         extensions=[_GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["dict"] = _TemplateDict()
    env.globals["namespace"] = _TemplateNamespace
    return env


def hearth_environment() -> BoundedSandbox:
    """Hearth's catalogue environment: whitespace kept as written, strict undefined variables."""
    env = BoundedSandbox(trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True,
                         autoescape=False, undefined=jinja2.StrictUndefined)
    env.globals["raise_exception"] = _raise_exception
    builtin_tojson = env.filters["tojson"]

    def tojson(*args: Any, **kwargs: Any) -> Any:
        _check_width(kwargs.get("indent", args[2] if len(args) > 2 else None), "a JSON indent")
        return builtin_tojson(*args, **kwargs)

    tojson.jinja_pass_arg = builtin_tojson.jinja_pass_arg  # type: ignore[attr-defined]
    env.filters["tojson"] = tojson
    return env


# ---- running a template within its limits -----------------------------------------------------


def _return_free_heap() -> None:
    """Free garbage and give freed heap pages back to the OS, so resident memory grows with what a render allocates.

    Otherwise an earlier render's garbage (Jinja frames and namespaces form reference cycles) is freed by the
    collector in the middle of this render, or stays resident and is reused unseen, and a template could
    allocate that much more than the budget before the resident size moved.
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # musl and other libcs have no malloc_trim
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


class _Watchdog:
    """A tracer that raises RenderLimitError at the deadline or past the memory budget.

    It checks on every Python call while the template runs and on every line of the
    template's own code, so a runaway loop or recursion stops within milliseconds.
    """

    def __init__(self, time_limit_s: float, memory_limit: int, *, strict_memory: bool) -> None:
        import psutil

        self.process = psutil.Process()
        self.time_limit_s = time_limit_s
        self.memory_limit = memory_limit
        if strict_memory:
            _return_free_heap()
        self.start_rss = self.process.memory_info().rss
        self.next_memory_check = 0.0
        self.deadline = time.monotonic() + time_limit_s  # the render's own time, not the preparation's

    def check(self) -> None:
        now = time.monotonic()
        if now > self.deadline:
            raise RenderLimitError(f"it ran longer than {self.time_limit_s:g} s")
        if now >= self.next_memory_check:
            self.next_memory_check = now + _MEMORY_CHECK_S
            grown = self.process.memory_info().rss - self.start_rss
            if grown > self.memory_limit:
                raise RenderLimitError(f"it used more than {self.memory_limit // (1024 * 1024)} MB of memory")

    def global_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        self.check()
        if frame.f_code.co_filename == "<template>":
            return self.local_trace
        return None

    def local_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.check()
        return self.local_trace


def render_bounded(template: jinja2.Template, context: dict[str, Any], *,
                   time_limit_s: float = TIME_LIMIT_S, memory_limit: int = MEMORY_LIMIT_BYTES,
                   max_chars: int = MAX_OUTPUT_CHARS, strict_memory: bool = True) -> str:
    """Render within the time, memory and output limits; RenderLimitError when one is passed.

    ``strict_memory`` first collects garbage and returns freed heap to the OS, so that resident
    memory grows with every byte the template allocates: cheap in the small template process,
    seconds in a long-running app with a large heap, so a caller there passes False for its own
    trusted templates (the budget is then looser by the heap already free). Either way the
    collector is paused while the template runs: a collection of the host's whole heap must not
    count as the template's time, nor free memory in the middle of its budget.
    """
    watchdog = _Watchdog(time_limit_s, memory_limit, strict_memory=strict_memory)
    previous = sys.gettrace()
    parts: list[str] = []
    total = 0
    collecting = gc.isenabled()
    gc.disable()
    sys.settrace(watchdog.global_trace)
    try:
        pieces: Iterator[str] = template.generate(context)
        for piece in pieces:
            total += len(piece)
            if total > max_chars:
                raise RenderLimitError(f"its output passed {max_chars:,} characters")
            parts.append(piece)
    finally:
        sys.settrace(previous)
        if collecting:
            gc.enable()
    return "".join(parts)


def one_line(text: str, limit: int = 300) -> str:
    """One short line, safe for a terminal: control characters (escape sequences) shown as \\xNN."""
    flat = " ".join(str(text).split())
    flat = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in flat[: limit * 2])
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe_failure(exc: BaseException) -> tuple[str, str, str]:
    """(kind, words, reason) for a render that raised: kind is "refused" (the template's own
    ``raise_exception``, reason its words) or "error"; ``words`` follow the template's name."""
    if isinstance(exc, TemplateRefusedError):
        reason = one_line(exc.message or "no reason given")
        return "refused", f"refused this conversation: {reason}", reason
    if isinstance(exc, RenderLimitError):
        words = f"was stopped: {one_line(str(exc))}"
    elif isinstance(exc, SecurityError):
        words = f"tried something unsafe and was stopped: {one_line(str(exc))}"
    elif isinstance(exc, jinja2.TemplateError):
        words = f"failed to render: {one_line(str(exc))}"
    elif isinstance(exc, RecursionError):
        words = "failed to render: it recursed too deeply"
    elif isinstance(exc, MemoryError):
        words = "failed to render: it ran out of memory"
    elif isinstance(exc, ValueError) and "digits" in str(exc) and "int" in str(exc):
        words = "failed to render: it made a number too long to print (over 4,300 digits)"
    else:
        words = f"failed to render: {type(exc).__name__}: {one_line(str(exc))}"
    return "error", words, ""
