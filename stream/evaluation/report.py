"""The evaluation report: ``summary.json``, plots, and a short ``summary.md``.

Plots need matplotlib, the optional extra ``report``
(``pip install 'streamrec[report]'``); it is imported only here, only when a
report is written, and always with the non-interactive Agg backend.

Files written to the report folder:

- ``summary.json``: the summary, as ``streamrec evaluate`` prints it;
- ``hr_rolling.png``: rolling HR@k of the model and each baseline;
- ``auc_rolling.png``: rolling AUC per task (when the model predicts tasks);
- ``tradeoff.png``: HR@k against diversity (when the summary has ``tradeoff``);
- ``summary.md``: a table of the figures, the command line, the plots.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from stream.errors import StreamError
from stream.evaluation import TradeoffUnsupported, evaluate_tradeoff

__all__ = ["ReportError", "TradeoffUnsupported", "evaluate_tradeoff", "write_report"]


class ReportError(StreamError):
    """A report cannot be written (matplotlib missing, folder not writable)."""


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or a :class:`ReportError` naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError(
            "plots need matplotlib, the optional extra 'report': "
            "pip install 'streamrec[report]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_report(
    summary: dict[str, Any], out_dir: Path | str, *, command: str | None = None
) -> list[Path]:
    """Write the summary, its plots and ``summary.md`` into ``out_dir`` (created if needed).

    Parameters
    ----------
    summary
        What ``streamrec evaluate`` prints: the model's figures with
        ``rolling`` curves, optionally ``baselines: {name: summary}`` and a
        ``tradeoff`` list of ``{"diversity_weight", "hr@k", "diversity"}``.
    out_dir
        The report folder.
    command
        The command line that produced the summary (default: ``summary["command"]``).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ReportError
        If matplotlib is missing or the folder cannot be written.
    """
    plt = require_matplotlib()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = [_write_json(summary, out / "summary.json")]
        plots = [
            _plot_rolling_hr(plt, summary, out / "hr_rolling.png"),
            _plot_rolling_auc(plt, summary, out / "auc_rolling.png"),
            _plot_tradeoff(plt, summary, out / "tradeoff.png"),
        ]
        plots = [p for p in plots if p is not None]
        written += plots
        md = out / "summary.md"
        md.write_text(_markdown(summary, plots, command or summary.get("command")), "utf-8")
        written.append(md)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc}") from None
    return written


# ----------------------------------------------------------------------------- files


def _write_json(summary: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", "utf-8")
    return path


def _k(summary: dict[str, Any]) -> int:
    return int(summary.get("k", 10))


def _label(summary: dict[str, Any], fallback: str) -> str:
    return str(summary.get("model_name") or summary.get("model") or fallback)


def _curves(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, summary) of the model, then of each baseline, for those with rolling curves."""
    runs = [(_label(summary, "model"), summary)]
    runs += list(summary.get("baselines", {}).items())
    return [(name, run) for name, run in runs if run.get("rolling")]


def _xy(xs: list[int], ys: list[float | None]) -> tuple[list[int], list[float]]:
    """Points with a value (a window with nothing to measure is a gap, not a zero)."""
    kept = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    return [x for x, _ in kept], [y for _, y in kept]


def _plot_rolling_hr(plt: Any, summary: dict[str, Any], path: Path) -> Path | None:
    runs = _curves(summary)
    if not runs:
        return None
    key = f"hr@{_k(summary)}"
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for n, (name, run) in enumerate(runs):
        rolling = run["rolling"]
        xs, ys = _xy(rolling["events"], rolling.get(key, []))
        ax.plot(xs, ys, label=name, linewidth=2.0 if n == 0 else 1.0)
    window = runs[0][1]["rolling"]["window"]
    ax.set(
        xlabel="events",
        ylabel=f"HR@{_k(summary)} per window",
        title=f"Rolling HR@{_k(summary)} ({window:,}-event windows, rank before learn)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(plt, fig, path)


def _plot_rolling_auc(plt: Any, summary: dict[str, Any], path: Path) -> Path | None:
    rolling = summary.get("rolling") or {}
    curves = rolling.get("auc") or {}
    if not any(y is not None for ys in curves.values() for y in ys):
        return None
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for task, ys in curves.items():
        xs, kept = _xy(rolling["events"], ys)
        ax.plot(xs, kept, label=task)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set(
        xlabel="events",
        ylabel="AUC per window",
        title=f"Rolling task AUC ({rolling['window']:,}-event windows): {_label(summary, '')}",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(plt, fig, path)


def _plot_tradeoff(plt: Any, summary: dict[str, Any], path: Path) -> Path | None:
    key = f"hr@{_k(summary)}"
    points = [
        p for p in summary.get("tradeoff") or [] if p.get("diversity") is not None and key in p
    ]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 5))
    xs = [p["diversity"] for p in points]
    ys = [p[key] for p in points]
    ax.plot(xs, ys, marker="o")
    for p in points:
        ax.annotate(
            f"w={p['diversity_weight']:g}",
            (p["diversity"], p[key]),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize="small",
        )
    ax.set(
        xlabel="intra-list diversity (1 - genre Jaccard)",
        ylabel=f"HR@{_k(summary)}",
        title="Accuracy / diversity trade-off",
    )
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- markdown


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _markdown(summary: dict[str, Any], plots: list[Path], command: str | None) -> str:
    k = _k(summary)
    columns = [f"hr@{k}", f"ndcg@{k}", f"mrr@{k}", "coverage", "diversity", "novelty"]
    header = ["model", *columns, "AUC", "RMSE", "events/s"]
    rows = [(_label(summary, "model"), summary)]
    rows += list(summary.get("baselines", {}).items())
    lines = [
        f"# Prequential evaluation: {summary.get('dataset', '')}",
        "",
        f"{_fmt(summary.get('events'))} events, rank before learn, seen items excluded, k = {k}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, run in rows:
        auc = ", ".join(f"{t} {v:.3f}" for t, v in (run.get("auc") or {}).items()) or "–"
        cells = [name, *(_fmt(run.get(c)) for c in columns)]
        cells += [auc, _fmt(run.get("rmse")), _fmt(run.get("events_per_second"), 0)]
        lines.append("| " + " | ".join(cells) + " |")
    if summary.get("tradeoff"):
        lines += [
            "",
            "Accuracy / diversity sweep:",
            "",
            f"| diversity weight | hr@{k} | diversity |",
        ]
        lines.append("|---|---|---|")
        for p in summary["tradeoff"]:
            lines.append(
                f"| {p['diversity_weight']:g} | {_fmt(p.get(f'hr@{k}'))} | "
                f"{_fmt(p.get('diversity'))} |"
            )
    if summary.get("tradeoff_skipped"):
        lines += ["", f"Trade-off sweep skipped: {summary['tradeoff_skipped']}"]
    if command:
        lines += ["", "Produced by:", "", "```", command, "```"]
    for plot in plots:
        lines += ["", f"![{plot.stem}]({plot.name})"]
    return "\n".join(lines) + "\n"
