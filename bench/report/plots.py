"""Plots: PNG files drawn from the summary (bench/report/summary.py). matplotlib is optional:
without it `draw` draws nothing and says why, and the report says the plots were skipped."""
import os

CAPTIONS = {"per_op_overhead.png": "Per-op cost of the scalar chains (W3, W9)",
            "ratio_to_floor.png": "Ratio to the floor per workload, with the targets",
            "scaling_w2.png": "W2 against n",
            "scaling_w9.png": "W9 time and peak memory against chain length"}
COLORS = {"floor": "#888888", "dualad": "#d62728", "peer": "#1f77b4", "peer-jit": "#9ecae1"}


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
                color=[COLORS.get(r["role"], "k") for r in data])
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
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(ws) + 1.5))
    for i, w in enumerate(ws):
        floor = tables[w]["floor_median"]
        if not floor:
            continue
        ax.barh(i, judged[w]["x_floor"], color=COLORS["dualad"], height=0.6,
                label="dualad" if i == 0 else None)
        for r in tables[w]["rows"]:
            if r["role"] in ("peer", "peer-jit"):
                ax.plot(r["median"] / floor, i, "o" if r["role"] == "peer" else "s",
                        color=COLORS[r["role"]], ms=5,
                        label=({"peer": "peer (eager)", "peer-jit": "peer (jit/function)"}
                               [r["role"]] if r["role"] not in ax.get_legend_handles_labels()[1]
                               else None))
                ax.annotate(r["impl"].split("-")[0][:5], (r["median"] / floor, i),
                            textcoords="offset points", xytext=(0, 5), fontsize=6,
                            ha="center")
        if w in limits:
            ax.plot([limits[w]] * 2, [i - 0.4, i + 0.4], color="k", lw=2,
                    label="target" if "target" not in ax.get_legend_handles_labels()[1]
                    else None)
    ax.set_yticks(range(len(ws)))
    ax.set_yticklabels([f"{w} ({tables[w]['floor']})" for w in ws], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1, color="#888888", lw=0.8)
    ax.set_xlabel("median / floor median (log scale; 1 = the floor)")
    ax.set_title("Ratio to the floor per workload")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="lower right")
    return fig


def scaling_w2(plt, tables, summary):
    """W2: every row's median against n."""
    fig, ax = plt.subplots(figsize=(7, 5))
    w2 = [t for w, t in tables.items() if w.startswith("W2 ")]
    for impl in sorted({r["impl"] for t in w2 for r in t["rows"]}):
        found = [r for t in w2 for r in t["rows"] if r["impl"] == impl]
        pts = sorted((r["n"], r["median"]) for r in found)
        ax.plot(*zip(*pts), marker="o", label=impl, lw=2.5 if found[0]["role"] == "dualad" else 1,
                ls="--" if found[0]["role"] == "floor" else "-")
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
        lengths = [p[0] for p in pts]
        style = dict(marker="o", label=name, lw=2.5 if name.startswith("dualad") else 1,
                     ls="--" if name.startswith("floor") else "-")
        axes[0].plot(lengths, [p[1] for p in pts], **style)
        axes[1].plot(lengths, [max(p[2], 1) / 2**20 for p in pts], **style)
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
