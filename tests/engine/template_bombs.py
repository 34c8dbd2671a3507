"""A generator of hostile chat templates: every way to grow time or memory, at several sizes, in several disguises."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

SIZES = ("10**6 * 5", "10**9", "2**31", "999999999", "2**63")

# Expressions that make something of size N in one step ({n} is the size expression).
AMPLIFIERS = (
    "'x' * ({n})",
    "({n}) * 'ab'",
    "([1, 2] * ({n}))|length",
    "'x'.center({n})",
    "'x'|center({n})",
    "'x'.ljust({n})",
    "'x'.rjust({n})",
    "'7'.zfill({n})",
    "'\\t'.expandtabs({n})",
    "'%' ~ ({n}) ~ 'd'",  # builds a format string, applied below by the % disguise
    "'{{:>{{}}}}'.format('x', {n})",
    "('a\\nb')|indent({n})",
    "lipsum({n})",
    "range({n})|list|length",
    "messages|tojson(indent={n})",
    "2 ** ({n})",
    "({n}) ** ({n})",
    "[1]|slice({n})|list|length",
)

# Ways to hide an expression: directly, through a variable, a macro, a loop, a filter chain, % formatting.
DISGUISES = (
    "{{{{ {e} }}}}",
    "{{% set v = {e} %}}{{{{ v }}}}",
    "{{% macro m() %}}{{{{ {e} }}}}{{% endmacro %}}{{{{ m() }}}}",
    "{{% for i in range(2) %}}{{{{ {e} }}}}{{% endfor %}}",
    "{{% set ns = namespace(v='') %}}{{% set ns.v = {e} %}}{{{{ ns.v|string|length }}}}",
    "{{{{ ({e})|string|upper|length }}}}",
    "{{{{ ({e}) % 1 if ({e}) is string else ({e}) }}}}",
)

# Whole templates that grow step by step, or loop, or recurse.
RUNAWAYS = (
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}",
    "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ['x' * 1000000 ~ i] %}"
    "{% endfor %}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% macro f(n) %}{{ f(n + 1) ~ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
    "{% set s = 'x' * 1000000 %}{{ ([s] * 100000)|join }}",
    "{% set s = 'x' * 1000000 %}{{ ''.join([s] * 100000) }}",
    "{% set s = 'x' * 100000 %}{{ s|replace('', s) }}",
    "{% set s = 'x' * 100000 %}{{ s.replace('x', s) }}",
    "{{ (10**5000)|string }}",
    "{{ 1 / 0 }}{{ 1 // 0 }}",
    "{{ inf + 1 }}{{ nan }}",
    "{% set d = dict.fromkeys(range(100000)) %}{% for i in range(100000) %}{{ d|length }}{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ raise_exception.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.system('true') }}",
    "{% set ns = namespace(_x=1) %}{{ ns }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%.999999999f' % 1.0 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '%999999999s'|format('x') }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ '{0:{1}}'.format('x', 999999999) }}",
    "{{ '{:>{w}}'.format_map({'w': 999999999}) }}",
    "{{" + "(" * 400 + "1" + ")" * 400 + "}}",
    "{% for %}",
)


@dataclass(frozen=True)
class Bomb:
    """One hostile template and a name that says how it was made."""

    name: str
    source: str


def bombs(limit: int | None = None, seed: int = 19) -> Iterator[Bomb]:
    """The runaway templates, then amplifier x size x disguise combinations (a seeded sample
    of ``limit`` of them when given)."""
    for index, source in enumerate(RUNAWAYS):
        yield Bomb(f"runaway-{index}", source)
    combos = list(itertools.product(range(len(AMPLIFIERS)), range(len(SIZES)), range(len(DISGUISES))))
    if limit is not None and limit < len(combos):
        combos = random.Random(seed).sample(combos, limit)
    for a, s, d in combos:
        expression = AMPLIFIERS[a].format(n=SIZES[s])
        yield Bomb(f"amp{a}-size{s}-disguise{d}", DISGUISES[d].format(e=expression))
