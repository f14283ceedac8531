"""The site's generated pages, made at build time by mkdocs-gen-files: a page per registered implementation from its
own declarations, the committed results and the reproduced experiments' tables from reports/results/.

Nothing here is written by hand twice: a new file in impls/ is a new page, a new run in reports/results/ (the main
job's `python -m reports`) is new numbers on the next build. `pages()` is what the tests read too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "reports" / "results"
WORKLOADS = ("rumelhart", "mnist-64", "epfl", "mnist-60000")  # the named workloads, as the glance tables order them
REPRODUCED = "## Reproduced experiments"  # where reports/results/README.md's experiment tables start


def _markdown_text(docstring: str) -> str:
    """A plain-text docstring as markdown paragraphs: `*`, `_` and `<` escaped so they stay characters."""
    return re.sub(r"([*_<\\])", r"\\\1", docstring)


def _module_docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def _medians(name: str) -> str:
    """The implementation's committed fp32 medians on the named workloads: one row per hardware, its newest run."""
    from reports.tidy import label

    csv = RESULTS / "benchmarks.csv"
    if not csv.exists():
        return "No committed benchmark run yet (`python -m reports` writes reports/results/benchmarks.csv).\n"
    df = pd.read_csv(csv)
    df = df[(df["kind"] == "named") & (df["precision"] == "fp32") & (df["impl"] == name)]
    if df.empty:
        return "No committed benchmark row for this implementation yet.\n"
    df = df.assign(hardware=df.apply(label, axis=1))
    lines = ["| hardware, run | " + " | ".join(WORKLOADS) + " |", "|---" * (len(WORKLOADS) + 1) + "|"]
    for hardware, g in sorted(df.groupby("hardware")):
        run = max(g["run"])
        g = g[g["run"] == run].set_index("workload")
        cells = [f"{g.loc[w, 'median'] * 1e6:,.1f} µs" if w in g.index else "–" for w in WORKLOADS]
        lines.append(f"| {hardware}, `{run}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def implementation_pages() -> dict[str, str]:
    """implementations/index.md (the ladder) and implementations/NAME.md for every registered implementation."""
    import impls
    from impls.base import Implementation

    classes = sorted((impls.get(n) for n in impls.names()), key=lambda c: (c.rank, c.name))
    index = [
        "# Implementations",
        "",
        "One file each under `impls/`, one interface (`impls.base.Implementation`), registered with",
        '`@register("name")`. This page and the one per implementation are generated from the registry\'s own',
        "declarations when the site is built: a new implementation appears here with no edit to the docs.",
        "They are listed in the order of their `rank`: from the textbook loop to the fused kernels.",
        "",
        "| implementation | what it is | devices | precisions |",
        "|---|---|---|---|",
    ]
    pages = {}
    for cls in classes:
        devices, precisions = ", ".join(cls.devices), ", ".join(cls.precisions)
        index.append(f"| [`{cls.name}`]({cls.name}.md) | {cls.summary} | {devices} | {precisions} |")
        source = Path(cls.__module__.replace(".", "/") + ".py")
        train = (
            "its own (K steps per call)" if cls.train is not Implementation.train else "the default loop over step()"
        )
        rows = [
            ("registered as", f"`{cls.name}` in `{source}` (class `{cls.__name__}`)"),
            ("devices", ", ".join(cls.devices)),
            ("dtypes", ", ".join(str(d).removeprefix("torch.") for d in cls.dtypes)),
            ("precisions", ", ".join(cls.precisions)),
            ("allocates through", f"{cls.allocates} (the meter `benchmarks/memory.py` reads)"),
            ("compiles per configuration", "yes (first call timed apart)" if cls.compiles else "no"),
            ("cost per sample (N capped in benchmarks)", "yes" if cls.per_sample else "no"),
            ("per-sample gradients", "yes (`--per-sample`)" if cls.gives_per_sample_grads else "no"),
            ("train(x, t, steps)", train),
            ("baseline of the speed-ups", "yes" if cls.baseline else "no"),
        ]
        pages[f"implementations/{cls.name}.md"] = "\n".join(
            [
                f"# `{cls.name}`",
                "",
                f"*{cls.summary}*",
                "",
                "| declared | value |",
                "|---|---|",
                *[f"| {k} | {v} |" for k, v in rows],
                "",
                "## What it is, and why",
                "",
                _markdown_text(_module_docstring(ROOT / source)),
                "",
                "## Committed medians (fp32, one training step)",
                "",
                _medians(cls.name),
                "Every timed step was first checked against the float64 oracle; the full tables are on the",
                "[committed results](../results.md) page.",
                "",
                f'??? note "Source: {source}"',
                "",
                "    ```python",
                f'    --8<-- "{source}"',
                "    ```",
                "",
            ]
        )
    pages["implementations/index.md"] = "\n".join(index) + "\n"
    return pages


def results_pages() -> tuple[dict[str, str], dict[str, bytes]]:
    """results.md (reports/results/README.md without its experiments) and the experiments' tables, with the plots."""
    summary = RESULTS / "README.md"
    if not summary.exists():
        text = "# Committed results\n\nNo report yet: run `python -m reports`.\n"
        return {"results.md": text, "experiments-tables.md": ""}, {}
    text = summary.read_text(encoding="utf-8")
    head, _, reproduced = text.partition(REPRODUCED)
    head = head.replace("# twolayer results", "# Committed results", 1)
    head = head.replace(
        "do not edit by hand.", "do not edit by hand. This page is that file, rebuilt with the site.", 1
    )
    images = {}
    for rel in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text):
        images[rel] = (RESULTS / rel).read_bytes()
    return {"results.md": head, "experiments-tables.md": f"## Reference vs ours (committed runs){reproduced}"}, images


def pages() -> tuple[dict[str, str], dict[str, bytes]]:
    """Every generated page (path under docs/ -> markdown) and image (path -> bytes)."""
    texts = implementation_pages()
    results, images = results_pages()
    texts["results.md"] = results["results.md"]
    texts["experiments.md+"] = results["experiments-tables.md"]  # appended to the hand-written experiments.md
    return texts, images


def main() -> None:
    """Write the pages into mkdocs' virtual docs folder (mkdocs-gen-files)."""
    import mkdocs_gen_files

    texts, images = pages()
    for path, text in texts.items():
        if path.endswith("+"):
            with mkdocs_gen_files.open(path[:-1], "a") as f:
                f.write("\n" + text)
            continue
        with mkdocs_gen_files.open(path, "w") as f:
            f.write(text)
        mkdocs_gen_files.set_edit_path(path, "gen_pages.py")
    for path, data in images.items():
        with mkdocs_gen_files.open(path, "wb") as f:
            f.write(data)


if __name__ in ("__main__", "<run_path>"):
    main()
