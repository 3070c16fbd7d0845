"""Plots: PNG files drawn from the summary (bench/report/summary.py). matplotlib is optional:
without it `draw` draws nothing and says why, and the report says the plots were skipped."""
import os

CAPTIONS = {"per_op_overhead.png": "Per-op cost of the scalar chains (W3, W9)",
            "ratio_to_floor.png": "Ratio to the floor per workload, with the targets",
            "scaling_w2.png": "W2 against n",
            "scaling_w9.png": "W9 time and peak memory against chain length"}
#: one colour per library, the same in every plot; a row's mode is told by its marker
LIBRARY_COLORS = {"floor": "#7f7f7f", "dualad": "#d62728", "torch": "#ff7f0e",
                  "jax": "#2ca02c", "tensorflow": "#1f77b4", "autograd": "#9467bd",
                  "micrograd": "#8c564b"}
OTHER_COLOR = "#17becf"
MARKERS = {"peer": "o", "peer-jit": "s"}


def library(impl):
    """The library a row measures: 'floor' for floors, else the name's first word."""
    return impl.split("-")[0]


def color(impl):
    return LIBRARY_COLORS.get(library(impl), OTHER_COLOR)


def positive(points):
    """The points whose values are all > 0: a log axis cannot show zero (a probe that
    measured nothing), and clamping it to a tiny value would draw a false point."""
    return [p for p in points if all(v > 0 for v in p)]


def draw(out, summary):
    """Write the PNGs into `out`: ([(file, caption)], None), or ([], why) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return [], "matplotlib is not installed (`pip install matplotlib`, or the `bench` extra)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = {t["workload"]: t for t in summary["workloads"]}
    written = []
    for name, plot in (("per_op_overhead.png", per_op_overhead),
                       ("ratio_to_floor.png", ratio_to_floor),
                       ("scaling_w2.png", scaling_w2), ("scaling_w9.png", scaling_w9)):
        fig = plot(plt, tables, summary)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
        written.append((name, CAPTIONS[name]))
    return written, None


def per_op_overhead(plt, tables, summary):
    """W3 and W9: time per primitive op of every row."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, w in zip(axes, ("W3", "W9")):
        data = sorted(tables[w]["rows"] if w in tables else [], key=lambda r: r["median"])
        if not data:
            ax.set_visible(False)
            continue
        ops = data[0].get("ops") or 1
        ax.barh([r["impl"] for r in data], [r["median"] / ops * 1e6 for r in data],
                color=[color(r["impl"]) for r in data])
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("µs per primitive op (median / chain length, log scale)")
        ax.set_title(f"{w}: gradient of a {ops:,}-op scalar chain")
        for i, r in enumerate(data):
            ax.text(r["median"] / ops * 1e6, i, f" {r['median'] / ops * 1e6:.3g}",
                    va="center", fontsize=8)
    return fig


def ratio_to_floor(plt, tables, summary):
    """Every workload: dualad's judged row, the peers, and the target's limit, over the floor."""
    limits = summary["ratio_limits"]
    judged = {w: next((r for r in t["rows"] if r["judged"]), None) for w, t in tables.items()}
    ws = [w for w in tables if judged[w]]
    fig, ax = plt.subplots(figsize=(12, 0.55 * len(ws) + 1.5))
    for i, w in enumerate(ws):
        floor = tables[w]["floor_median"]
        if not floor:
            continue
        ax.barh(i, judged[w]["x_floor"], color=LIBRARY_COLORS["dualad"], height=0.6,
                label="dualad (judged row)")
        for r in tables[w]["rows"]:
            if r["role"] in MARKERS and r["median"] > 0:
                mode = "eager" if r["role"] == "peer" else "jit/function"
                ax.plot(r["median"] / floor, i, MARKERS[r["role"]], color=color(r["impl"]),
                        ms=6, mec="k", mew=0.5, label=f"{library(r['impl'])} ({mode})")
        if w in limits:
            ax.plot([limits[w]] * 2, [i - 0.4, i + 0.4], color="k", lw=2, label="target")
    ax.set_yticks(range(len(ws)))
    ax.set_yticklabels([f"{w} ({tables[w]['floor']})" for w in ws], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    # ratios read as "3×", not "3 × 10⁰"; minor ticks unlabelled so that they never collide
    lo, hi = ax.get_xlim()    # 1-2-5 labels over a few decades; decades only when wide
    ax.xaxis.set_major_locator(plt.LogLocator(base=10, subs=(1, 2, 5) if hi / lo < 1e3 else (1,)))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.axvline(1, color="#888888", lw=0.8)
    ax.set_xlabel("median / floor median (log scale; 1 = the floor)")
    ax.set_title("Ratio to the floor per workload")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    # outside the axes, so that no entry hides a bar or a point
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def scaling_w2(plt, tables, summary):
    """W2: every row's median against n."""
    fig, ax = plt.subplots(figsize=(7, 5))
    w2 = [t for w, t in tables.items() if w.startswith("W2 ")]
    for impl in sorted({r["impl"] for t in w2 for r in t["rows"]}):
        found = [r for t in w2 for r in t["rows"] if r["impl"] == impl]
        pts = positive(sorted((r["n"], r["median"]) for r in found))
        if not pts:
            continue
        role = found[0]["role"]
        ax.plot(*zip(*pts), marker=MARKERS.get(role, "o"), label=impl, color=color(impl),
                lw=2.5 if role == "dualad" else 1,
                ls={"floor": "--", "peer-jit": ":"}.get(role, "-"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (x of shape (n, 1))")
    ax.set_ylabel("median time (s)")
    ax.set_title("W2: gradient of 2·xᵀx against n")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def scaling_w9(plt, tables, summary):
    """W9: time and peak memory of one gradient (fresh processes) against the chain length."""
    memory = summary["memory"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in sorted({p["runner"] for p in memory if "peak" in p}):
        pts = sorted((p["length"], p["seconds"], p["peak"]) for p in memory
                     if p.get("runner") == name and "peak" in p)
        style = dict(marker="o", label=name, color=color(name),
                     lw=2.5 if name.startswith("dualad") else 1,
                     ls="--" if name.startswith("floor") else "-")
        for ax, column, scale in ((axes[0], 1, 1), (axes[1], 2, 2**20)):
            shown = positive([(p[0], p[column] / scale) for p in pts])
            if shown:
                ax.plot(*zip(*shown), **style)
    for ax, label in zip(axes, ("gradient time (s)", "peak resident memory (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("chain length (ops)")
        ax.set_ylabel(label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_title("W9: time of one gradient against length")
    axes[1].set_title("W9: peak memory of one gradient against length")
    return fig
