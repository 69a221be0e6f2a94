"""The chart of a run: pyconv's speed-up over each contender, per case, on a log axis."""
from .report import speedups

# one colour per contender, the same in every panel
COLOURS = {"oracle": "#7f7f7f", "loops": "#c7c7c7", "torch": "#d62728", "torch-cl": "#ff9896",
           "scipy": "#1f77b4", "sklearn": "#ff7f0e", "faiss": "#2ca02c"}


def _rows(records):
    """Per family, ``[(row label, {contender: speed-up of pyconv's main kernel})]``.

    Tiny cases (there for the loop oracles; their times are mostly overhead)
    are left out when there are others.
    """
    if any(not rec["tiny"] for rec in records):
        records = [rec for rec in records if not rec["tiny"]]
    several_dtypes = len({rec["dtype"] for rec in records}) > 1
    families = {}
    for rec in records:
        ups = speedups(rec)
        if not ups:
            continue
        main = next(iter(ups))  # the first pyconv contender: "pyconv", or method="auto"
        label = f"{rec['op']} {rec['case']}" + (f" {rec['dtype']}" if several_dtypes else "")
        families.setdefault(rec["family"], []).append((label, ups[main]))
    return families


def plot(records, path, title="pyconv speed-up"):
    """Write a horizontal bar chart of pyconv's speed-ups to ``path`` (PNG).

    One panel per family, one group of bars per case (and dtype), one bar per
    contender: its median time over pyconv's main kernel's (``method="auto"``
    for convolution), on a log axis with a line at 1 (right of it, pyconv is
    faster).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = _rows(records)
    if not families:
        raise ValueError("nothing to plot: no case has a timed pyconv kernel and contender")
    heights = [sum(max(1, len(ups)) for _, ups in rows) + len(rows) for rows in families.values()]
    inches = 1.4 + 0.16 * sum(heights) + 0.4 * len(families)
    fig, axes = plt.subplots(len(families), 1, squeeze=False, figsize=(8, inches),
                             gridspec_kw={"height_ratios": heights})
    lowest = min(up for rows in families.values() for _, ups in rows for up in ups.values())
    highest = max(up for rows in families.values() for _, ups in rows for up in ups.values())
    seen = set()
    for ax, (family, rows) in zip(axes[:, 0], families.items()):
        y, ticks, labels = 0.0, [], []
        for label, ups in rows:
            start = y
            for contender, up in ups.items():
                ax.barh(y, up, height=0.8, color=COLOURS.get(contender, "#9467bd"),
                        label=None if contender in seen else contender)
                ax.text(up, y, f" {up:.0f}×" if up >= 10 else f" {up:.2g}×", va="center",
                        fontsize=7)
                seen.add(contender)
                y += 1
            ticks.append((start + y - 1) / 2)
            labels.append(label)
            y += 1
        ax.set_xscale("log")
        ax.set_xlim(min(lowest, 1.0) / 1.5, max(highest, 1.0) * 3)  # room for the labels
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(family, fontsize=9, loc="left")
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[-1, 0].set_xlabel("contender's median time / pyconv's (log; right of 1: pyconv faster)")
    top = 1 - 0.7 / inches  # title and legend above the panels
    fig.suptitle(title, x=0.02, y=1 - 0.08 / inches, ha="left", va="top", fontsize=9)
    fig.legend(loc="upper left", bbox_to_anchor=(0.01, 1 - 0.3 / inches), fontsize=8,
               ncol=len(seen), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, dpi=80)
    plt.close(fig)
