"""`akg ingest`, `akg stats`, `akg export`, `akg dataset fetch`: thin commands over akg_loader."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from akg.cli import echo_json, progress_enabled, stop_on_ctrl_c
from akg.connect import connect


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--source", help="Source name for every file (default: raw, pruned or test, from the file name).")
@click.option("--strict", is_flag=True, help="Refuse a file with any bad row (or CRLF line ends) before writing anything.")
@click.option("--rejects", type=click.Path(path_type=Path),
              help="Where to write the rejected rows (default: ./<first file>.rejects.tsv, only when there are any).")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 100000),
              help="Triples per transaction.")
@click.option("--move-split", is_flag=True, help="Let a test file move triples that the graph holds as training "
                                                  "triples to the test split (refused otherwise: models were trained on them).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def ingest(files: tuple[Path, ...], source: str | None, strict: bool, rejects: Path | None,
           batch_size: int, move_split: bool, as_json: bool) -> None:
    """Load AKG triple files into the graph, keeping each triple's provenance.

    Reads the AKG's 5-column TSV (label_name head relation tail response) and PyKEEN's headerless
    head/relation/tail TSV. Every file is checked before anything is written; bad rows are skipped,
    counted and written to a rejects file (or, with --strict, the run is refused).
    """
    from tqdm import tqdm

    from akg_loader.load import load_files, read_files, rejected_rows

    parsed = read_files(files, source=source, strict=strict)  # every file checked before anything is written
    for note in (n for p in parsed for n in p.notes):
        click.echo(f"warning: {note}", err=True)
    for bad in rejected_rows(parsed)[:5]:
        click.echo(f"rejected: {bad.file}, line {bad.line}: {bad.problem}", err=True)
    total = sum(len(p.rows) for p in parsed)
    with connect() as graph, tqdm(total=total, unit="triple", disable=not progress_enabled(),
                                   desc="ingest", file=sys.stderr) as bar, stop_on_ctrl_c("the ingest") as stop:
        summary = load_files(graph, files, parsed=parsed, rejects=rejects, batch_size=batch_size,
                             move_split=move_split, progress=bar.update, stop=stop)
    reject_path = summary.rejects_file
    if as_json:
        echo_json(summary.as_dict())
        return
    for f in summary.files:
        click.echo(f"{f['file']}: source {f['source']}, split {f['split']}, {f['rows']} rows read, "
                   f"{f['rejected']} rejected, {f['duplicates']} duplicate")
    click.echo(f"triples: {summary.triples_created} created, {summary.triples_updated} updated, "
               f"{summary.triples_unchanged} unchanged")
    click.echo(f"entities: {summary.entities_created} created, {summary.entities_existing} already present")
    if summary.moved_to_test:
        click.echo(f"moved to the test split (--move-split): {summary.moved_to_test} training triple(s)")
    if summary.rows_rejected:
        click.echo(f"rows rejected: {summary.rows_rejected} (written to {reject_path})")
    if not summary.changed:
        click.echo(f"nothing changed: all {summary.triples} triples were already in the graph")
    click.echo(f"done in {summary.seconds:.1f} s")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def stats(as_json: bool) -> None:
    """Entities and triples, by curation status, split, source and relation."""
    from akg_loader.stats import graph_stats

    with connect() as graph:
        s = graph_stats(graph)
    if as_json:
        echo_json(s)
        return
    click.echo(f"entities: {s['entities']}\ntriples:  {s['triples']}")
    for key in ("by_status", "by_split", "by_source"):
        click.echo(f"{key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in s[key].items()))
    click.echo("by status and split: " + ", ".join(f"{r['status']}/{r['split']} {r['n']}" for r in s["by_status_and_split"]))
    click.echo(f"relations ({len(s['by_relation'])}):")
    for rel, n in s["by_relation"].items():
        click.echo(f"  {n:7d}  {rel}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def check(as_json: bool) -> None:
    """Report entity names in the graph that break the naming rules (exit status 1 if any).

    The rules (every write path enforces them): not empty, at most 256 characters, no control or
    invisible characters, no '|', normal form (lower case, trimmed, Unicode NFC).
    """
    from akg_loader.checks import bad_names

    with connect() as graph:
        found = bad_names(graph)
    if as_json:
        echo_json({"bad_names": found})
    elif not found:
        click.echo("every entity name keeps the rules")
    else:
        from akg.names import shown

        for f in found:
            click.echo(f"{shown(f['name'])}: {f['problem']} ({f['triples']} triple(s))")
        click.echo(f"{len(found)} name(s) break the rules: reject or edit their triples with `akg curate`", err=True)
    if found:
        sys.exit(1)


@click.command()
@click.option("--split", type=click.Choice(["train", "test", "any"]), default="train", show_default=True)
@click.option("--status", type=click.Choice(["accepted", "rejected", "pending", "any"]), default="accepted", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="TSV file to write (default: standard output).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (needs -o).")
def export(split: str, status: str, output: Path | None, as_json: bool) -> None:
    """Write head/relation/tail TSV in a deterministic order, with the content hash in FILE.meta.json."""
    from akg.hashing import tsv_lines
    from akg_loader.export import export_triples, write_export

    if as_json and output is None:
        raise click.UsageError("--json describes the written file: give -o FILE")
    with connect() as graph:
        result = export_triples(graph, split=None if split == "any" else split,
                                status=None if status == "any" else status)
    if output is None:
        click.echo("".join(tsv_lines(result.triples)), nl=False)
        click.echo(f"{len(result.triples)} triples, sha256 {result.sha256}, graph version {result.graph_version[:12]}", err=True)
        return
    sidecar = write_export(result, output)
    if as_json:
        echo_json({"file": str(output), "meta": str(sidecar), **result.meta()})
    else:
        click.echo(f"wrote {len(result.triples)} triples to {output} (sha256 {result.sha256}); metadata in {sidecar}")


@click.group()
def dataset() -> None:
    """Get the AKG and the SALT label mapping (pinned, checksummed)."""


@dataset.command()
@click.option("--from", "from_dir", type=click.Path(path_type=Path), help="Copy from a local folder instead of downloading.")
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="Where to install (default: the data folder, AKG_HOME/data or $AKG_DATA_DIR).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def fetch(from_dir: Path | None, dest: Path | None, as_json: bool) -> None:
    """Download (or copy with --from) the AKG files and SALT mapping, checking their sha256."""
    from akg_loader.dataset import fetch as run_fetch

    done = run_fetch(dest, from_dir=from_dir)
    if as_json:
        echo_json([{"path": str(f.path), "action": f.action, "sha256": f.sha256} for f in done])
    else:
        for f in done:
            click.echo(f"{f.action:10s} {f.path}  sha256 {f.sha256[:16]}…")


@dataset.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def path(as_json: bool) -> None:
    """Print the data folder that `akg dataset fetch` fills (for scripts: `$(akg dataset path)/AKG_pruned.tsv`)."""
    from akg.config import Settings
    from akg_loader.dataset import installed

    settings = Settings.from_env()
    if as_json:
        files = {k: str(v) if v else None for k, v in installed(settings=settings).items()}
        echo_json({"data_dir": str(settings.data_dir), "label_sets_dir": str(settings.label_sets_dir), "files": files})
    else:
        click.echo(str(settings.data_dir))
