"""The dashboard's charts as inline SVG, drawn server-side with matplotlib.

Readable without colour (WCAG 2.2, 1.4.1 "Use of Color"): every series has its own
hatch pattern or marker and line style, and every bar or point carries its value as a
direct label, so a reader who cannot tell the colours apart (or prints in grey) loses
nothing. Each chart is an ``<svg role="img">`` named by its ``<title>`` and ``<desc>``;
the pages put the same figures in a data table beside it.

matplotlib is imported on first use (it costs ~0.3 s), without pyplot (no global figure
state; the object-oriented ``Figure`` is safe to use per request), and drawing is
serialised by a lock because its font cache and rcParams are process-wide. A chart is a
pure function of its (hashable) input, so renders are cached: a dashboard reloaded on
unchanged data draws nothing.

The SVG carries no inline CSS (the workspace's Content-Security-Policy forbids it):
matplotlib's ``style`` attributes become SVG presentation attributes.

Money arrives as integer cents and is labelled as whole dollars (rounded half up with
integer arithmetic); matplotlib only uses the numbers as geometry.
"""

from __future__ import annotations

import io
import re
import threading
from decimal import Decimal
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

#: Okabe & Ito's colour-blind-safe palette (light to dark); hatches carry the meaning anyway.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#CC79A7", "#0072B2", "#D55E00")
#: Line hatches only: dot and circle hatches cost ~100 KB of SVG path each.
HATCHES = ("//", "\\\\", "xx", "||", "---", "++", "//\\\\")
MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)))
INK = "#1a1a1a"

_lock = threading.Lock()
_ready = False


def _matplotlib() -> Any:
    """matplotlib, configured once: text stays text in the SVG, ids are deterministic."""
    global _ready
    import matplotlib

    if not _ready:
        matplotlib.rcParams.update(
            {
                "svg.fonttype": "none",  # <text> elements: selectable, scalable, read by screen readers
                "svg.hashsalt": "claims-server",
                "font.size": 10,
                "hatch.linewidth": 0.8,
                "axes.edgecolor": INK,
                "axes.labelcolor": INK,
                "xtick.color": INK,
                "ytick.color": INK,
                "text.color": INK,
            }
        )
        _ready = True
    return matplotlib


def dollars(cents: int) -> str:
    """Whole dollars with thousands separators, rounded half up: 123456 -> "$1,235"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${(abs(cents) + 50) // 100:,}"


def _plain(text: str) -> str:
    """A label as literal text: matplotlib would read ``$...$`` as mathtext."""
    return text.replace("$", r"\$")


_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
_EMPTY_DEFS = re.compile(r"<defs>\s*</defs>")
#: What matplotlib writes in ``style`` attributes: each is also an SVG presentation attribute.
_PRESENTATION = frozenset(
    {
        "fill",
        "fill-opacity",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "opacity",
        "stroke",
        "stroke-dasharray",
        "stroke-dashoffset",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-miterlimit",
        "stroke-opacity",
        "stroke-width",
        "text-anchor",
    }
)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r"(url\(#|href=\"#)")
_SIZE = re.compile(r'\s(width|height)="[^"]*"')
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)


def _declarations(css: str) -> str:
    """``a: b; c: d`` as presentation attributes `` a="b" c="d"``."""
    out = []
    for declaration in css.split(";"):
        prop, _, value = declaration.partition(":")
        prop, value = prop.strip(), value.strip()
        if not prop:
            continue
        if prop not in _PRESENTATION:
            raise ValueError(f"matplotlib wrote a style property with no SVG attribute: {prop}")
        out.append(f' {prop}="{escape(value)}"')
    return "".join(out)


def _without_inline_style(svg: str) -> str:
    """The SVG with its ``style`` attributes and ``<style>`` element as presentation attributes.

    The workspace's Content-Security-Policy (ui/blueprint.py) allows no inline style, so a
    browser would ignore matplotlib's ``style="fill: ..."`` and draw every shape black.
    Presentation attributes are not CSS and are not subject to it. The ``<style>`` rule
    (``*{stroke-linejoin: round; stroke-linecap: butt}``) becomes attributes of the root,
    which every element inherits unless it sets its own.
    """
    rules = "".join(_STYLE_ELEMENT.findall(svg))
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _EMPTY_DEFS.sub("", svg)
    svg = _STYLE_ATTR.sub(lambda m: _declarations(m.group(1)), svg)
    root_css = ";".join(re.findall(r"\*\s*\{([^}]*)\}", rules))
    head_end = svg.index(">")
    return svg[:head_end] + _declarations(root_css) + svg[head_end:]


def _inline(figure: Any, name: str, title: str, description: str) -> str:
    """The figure as an inline ``<svg>``: no prolog, ids prefixed by ``name``, scalable, labelled.

    Several charts share one HTML document, so their ids (clip paths, hatch patterns)
    must not collide; the root loses its fixed width/height so CSS can size it.
    """
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = out.getvalue()
    text = text[text.index("<svg") :]
    text = _without_inline_style(_METADATA.sub("", text))
    text = _ID.sub(lambda m: f'id="{name}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{name}-", text)
    head_end = text.index(">")
    root = _SIZE.sub("", text[:head_end])
    labels = (
        f'<title id="{name}-title">{escape(title)}</title><desc id="{name}-desc">{escape(description)}</desc>'
    )
    return (
        f'{root} role="img" aria-labelledby="{name}-title {name}-desc" class="chart" focusable="false">'
        f"{labels}{text[head_end + 1 :]}"
    )


def _figure(width: float, height: float) -> Any:
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# -- KPI trend: one small panel per indicator -------------------------------------------------


@lru_cache(maxsize=32)
def kpi_trend_svg(
    periods: tuple[str, ...],
    series: tuple[tuple[str, str, tuple[Decimal | None, ...]], ...],
    *,
    title: str,
    description: str,
) -> Markup:
    """Small multiples: one panel per KPI (``(label, unit, values per period)``), every point labelled.

    A period with no value (no claims, so no rate) is left out of the line and marked
    "n/a" on the axis, so a gap is never drawn as a zero.
    """
    with _lock:
        columns = 3
        rows = (len(series) + columns - 1) // columns
        figure = _figure(9.6, 2.5 * rows)
        axes = figure.subplots(rows, columns, squeeze=False)
        xs = list(range(len(periods)))
        for index, (label, unit, values) in enumerate(series):
            ax = axes[index // columns][index % columns]
            points = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
            ax.set_title(_plain(label), fontsize=10, loc="left")
            ax.set_xticks(xs, [_plain(p) for p in periods], fontsize=8)
            ax.set_xlim(-0.5, len(periods) - 0.5)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            suffix = " %" if unit == "percent" else " d"
            if points:
                top = max(v for _, v in points)
                ceiling = Decimal(100) if unit == "percent" else max(top, Decimal(1))
                floor = min(Decimal(0), *(v for _, v in points))  # days in A/R < 0: a credit balance
                ax.set_ylim(float(floor) * 1.25, float(ceiling) * 1.25)
                if floor < 0:
                    ax.axhline(0, color=INK, linewidth=0.6)
                ax.plot(
                    [x for x, _ in points],
                    [float(v) for _, v in points],
                    color=PALETTE[5 + index % 2],
                    marker=MARKERS[index % len(MARKERS)],
                    linestyle=LINESTYLES[index % len(LINESTYLES)],
                    linewidth=1.6,
                    markersize=5,
                )
                for x, v in points:
                    ax.annotate(
                        f"{v}{suffix}",
                        (x, float(v)),
                        textcoords="offset points",
                        xytext=(0, 6),
                        ha="center",
                        fontsize=8,
                    )
            else:
                ax.set_ylim(0, 1)
            for x, v in zip(xs, values, strict=True):
                if v is None:
                    ax.annotate(
                        "n/a", (x, 0), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8
                    )
            ax.set_yticks([])
        for index in range(len(series), rows * columns):
            axes[index // columns][index % columns].set_visible(False)
        return Markup(_inline(figure, "kpi-trend", title, description))


# -- A/R aging by payer: stacked, hatched horizontal bars ------------------------------------


@lru_cache(maxsize=32)
def aging_svg(
    buckets: tuple[str, ...],
    rows: tuple[tuple[str, tuple[int, ...]], ...],
    *,
    title: str,
    description: str,
) -> Markup:
    """One bar per payer (``(name, cents per bucket)``), one hatch per bucket, dollar labels.

    A segment wide enough to hold its label shows it; every bar ends with its total.
    """
    with _lock:
        figure = _figure(9.6, 1.2 + 0.55 * len(rows))
        ax = figure.subplots()
        names = [_plain(name) for name, _ in rows][::-1]
        totals = [sum(values) for _, values in rows][::-1]
        widest = max([*totals, 1])
        left = [0] * len(rows)
        for index, bucket in enumerate(buckets):
            widths = [values[index] for _, values in rows][::-1]
            bars = ax.barh(
                names,
                widths,
                left=left,
                color=PALETTE[index % len(PALETTE)],
                hatch=HATCHES[index % len(HATCHES)],
                edgecolor=INK,
                linewidth=0.6,
                label=f"{bucket} days",
                height=0.6,
            )
            for bar, width in zip(bars, widths, strict=True):
                if width > widest * 0.09:
                    ax.annotate(
                        dollars(width),
                        (bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2),
                        ha="center",
                        va="center",
                        fontsize=8,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
                    )
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for y, total in enumerate(totals):
            ax.annotate(
                dollars(total), (total, y), textcoords="offset points", xytext=(4, 0), va="center", fontsize=9
            )
        ax.set_xlim(0, widest * 1.18)
        ax.xaxis.set_major_formatter(lambda value, _: dollars(int(value)))
        ax.tick_params(axis="x", labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.legend(
            title="Age of the balance",
            ncols=len(buckets),
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12 if len(rows) > 2 else -0.25),
            fontsize=8,
            title_fontsize=8,
            frameon=False,
            handleheight=1.6,
            handlelength=2.6,
        )
        return Markup(_inline(figure, "ar-aging", title, description))


# -- top denial reasons -------------------------------------------------------------------------


@lru_cache(maxsize=32)
def denial_reasons_svg(
    reasons: tuple[tuple[str, int], ...],
    *,
    title: str,
    description: str,
) -> Markup:
    """One hatched bar per reason (``(label, claims)``), most frequent on top, counts labelled."""
    with _lock:
        figure = _figure(9.6, 1.0 + 0.45 * len(reasons))
        ax = figure.subplots()
        labels = [_plain(label) for label, _ in reasons][::-1]
        counts = [count for _, count in reasons][::-1]
        bars = ax.barh(
            labels, counts, color=PALETTE[6], hatch=HATCHES[0], edgecolor=INK, linewidth=0.6, height=0.6
        )
        ax.bar_label(
            bars, labels=[f"{c} claim{'s' if c != 1 else ''}" for c in counts], padding=4, fontsize=8
        )
        ax.set_xlim(0, max([*counts, 1]) * 1.3)
        ax.set_xticks([])
        ax.tick_params(axis="y", labelsize=8)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        return Markup(_inline(figure, "denial-reasons", title, description))
