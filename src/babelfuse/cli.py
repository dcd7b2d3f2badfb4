"""The ``babelfuse`` command: predict a post, promote a model, read the latest evaluation.

The pipeline itself runs with ``make run`` / ``dvc repro``; this command is for using what it
built. A mistake (missing file, unknown language, no such model) prints one red line and exits 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import webbrowser
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from babelfuse import logs, monitoring, paths
from babelfuse.config import Config, load_config
from babelfuse.data import espeak, language_check, language_support, text_gen
from babelfuse.errors import BabelfuseError, load_npz, read_json
from babelfuse.features.text import UseMultilingualEncoder, default_threads, encoder_covers
from babelfuse.labels import LABELS, LANGUAGES
from babelfuse.serving import gate
from babelfuse.serving.predict import first_line, load, predict_post, read_media

logs.setup("babelfuse.cli")
app = typer.Typer(
    name="babelfuse",
    help="Cross-lingual multimodal sentiment: predict posts, gate models into production, read the evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DEFAULT_MODEL_URI = "models:/babelfuse@champion"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """BabelfuseError / MlflowException -> one red line on stderr, exit code 2, no traceback."""
    try:
        yield
    except BabelfuseError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except Exception as err:  # MLflow's exceptions are user-facing here too (e.g. unknown alias)
        if type(err).__name__ != "MlflowException":
            raise
        typer.secho(f"error: {first_line(getattr(err, 'message', str(err)))}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def _in_project(path: Path) -> Path:
    """A relative default like ``metrics/eval.json`` found from anywhere inside the project."""
    return path if path.is_absolute() or path.exists() else paths.project_root() / path


def _project_config() -> Config:
    """The project's validated params.yaml, or the schema's defaults outside a project."""
    file = _in_project(paths.PARAMS)
    return load_config(file) if file.exists() else Config()


def _register_params() -> dict[str, Any]:
    return _project_config().section("register")


def _seed() -> int:
    return int(_project_config().seed)


@app.command()
def predict(
    lang: Annotated[
        str, typer.Option("--lang", "-l", help="Language code of the post, e.g. en, de, ja, ar.")
    ],
    text: Annotated[
        str | None, typer.Option("--text", "-t", help="The post's sentence (omit for no text).")
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", "-i", help="Picture file (PNG, JPEG, ...).")
    ] = None,
    audio: Annotated[
        Path | None, typer.Option("--audio", "-a", help="Voice clip (WAV, FLAC, OGG, MP3).")
    ] = None,
    model_uri: Annotated[
        str,
        typer.Option(
            "--model-uri",
            "-m",
            help="Any MLflow model URI: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/...",
        ),
    ] = DEFAULT_MODEL_URI,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    explained: Annotated[
        bool,
        typer.Option(
            "--explain", help="Also print each modality's contribution (Shapley value) to the answer."
        ),
    ] = False,
) -> None:
    """Predict the sentiment of one post: a sentence, a picture and/or a voice clip.

    Any modality may be left out (at least one is needed). Files are read here and sent to the
    model as bytes, as a client of `mlflow models serve` would.

    \b
    Examples:
      babelfuse predict --lang de --text "Das Essen war wunderbar!"
      babelfuse predict -l ja -t "最悪でした。" -i face.png -a clip.wav --json
      babelfuse predict -l en -t "fine" --model-uri models:/babelfuse@challenger
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with user_errors():
        read_media(image, "image"), read_media(audio, "audio")  # fail on a bad path before the slow load
        result = predict_post(load(model_uri), text, lang, image, audio, explained)
        result["model_uri"] = model_uri
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    typer.secho(f"{result['label']}", bold=True, nl=False)
    typer.echo(f"   ({result['lang']}; from {', '.join(result['modalities'])}; model {model_uri})")
    for label in LABELS:
        p = result["probabilities"][label]
        typer.echo(f"  {label:<9} {p:6.3f}  {'#' * round(p * 30)}")
    if explained:
        typer.echo(f"contributions to p({result['label']}) (sum = p(all) - p(none)):")
        for modality, value in result["contributions"].items():
            typer.echo(f"  {modality:<9} {value:+6.3f}")


@app.command()
def report(
    metrics: Annotated[
        Path, typer.Option("--metrics", help="The evaluate stage's detail metrics (per language, CIs).")
    ] = paths.METRICS / "eval_detail.json",
    html: Annotated[
        Path, typer.Option("--report", help="The HTML report to point to / open.")
    ] = paths.EVAL_REPORT,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML report in a web browser.")
    ] = False,
) -> None:
    """Print the headline of the latest evaluation and where its full report is.

    Shows test macro-F1 and accuracy, source vs target languages (the transfer gap), the worst
    language and macro-F1 per language with its 95 % interval.

    \b
    Examples:
      babelfuse report
      babelfuse report --open
    """
    with user_errors():
        metrics, html = _in_project(metrics), _in_project(html)
        if not metrics.exists():
            raise BabelfuseError(
                f"{metrics} not found: run the pipeline first (make run, or dvc repro evaluate)"
            )
        m = read_json(metrics)
        for line in headline_lines(m):
            typer.echo(line)
        typer.echo(f"\nfull report: {html}" + ("" if html.exists() else "  (not found)"))
        if open_browser:
            if not html.exists():
                raise BabelfuseError(f"{html} not found: run the evaluate stage")
            if not webbrowser.open(html.resolve().as_uri()):
                typer.echo(f"could not start a browser; open {html.resolve().as_uri()} yourself")


def _num(value: Any, fmt: str = ".3f") -> str:
    return "n/a" if value is None else format(float(value), fmt)


def headline_lines(m: dict[str, Any]) -> list[str]:
    """Human-readable lines for an ``eval.json``."""
    lines = [
        f"test macro-F1 {_num(m.get('test_macro_f1'))} "
        f"[{_num(m.get('test_macro_f1_ci_low'))}, {_num(m.get('test_macro_f1_ci_high'))}]   "
        f"accuracy {_num(m.get('test_accuracy'))}   (n={m.get('n_test', '?')})",
        f"source ({m.get('source_langs', '?')}) macro-F1 {_num(m.get('source_macro_f1'))}   "
        f"targets mean {_num(m.get('target_macro_f1'))}   transfer gap {_num(m.get('transfer_gap'), '+.3f')}   "
        f"worst language {m.get('worst_language', '?')}",
    ]
    per = m.get("per_language") or {}
    if per:
        lines.append(f"\n  {'lang':<6}{'macro-F1':>9}  {'95% CI':<15}{'accuracy':>9}{'n':>6}")
        for lang, d in per.items():
            ci = f"[{_num(d.get('macro_f1_ci_low'))}, {_num(d.get('macro_f1_ci_high'))}]"
            lines.append(
                f"  {lang:<6}{_num(d.get('macro_f1')):>9}  {ci:<15}{_num(d.get('accuracy')):>9}{d.get('n', ''):>6}"
            )
    return lines


@app.command()
def promote(
    model_name: Annotated[
        str | None,
        typer.Option("--model-name", help="Registered model (default: params.yaml register.model_name)."),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(help="Macro-F1 gain the paired lower bound must exceed (default: register.margin)."),
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="One-sided level of that bound (default: register.alpha).")
    ] = None,
    tolerance: Annotated[
        float | None, typer.Option(help="Largest allowed per-language drop (default: register.tolerance).")
    ] = None,
    manifest: Annotated[
        Path, typer.Option(help="Validated manifest whose gate split is frozen the first time.")
    ] = paths.VALIDATED_MANIFEST,
    promotions: Annotated[Path, typer.Option(help="Decision log (one JSON line each).")] = paths.PROMOTIONS,
) -> None:
    """Gate the 'challenger' version against the 'champion' and promote it if it passes.

    Both are scored through their own end-to-end models on the same frozen `gate` split (never
    on test). The challenger becomes champion only if the paired bootstrap's lower ALPHA bound of
    its macro-F1 gain exceeds MARGIN and no language drops by more than TOLERANCE against the
    champion or the first champion; the first model becomes champion. The decision is tagged on
    the version and appended to the decision log.

    \b
    Examples:
      babelfuse promote
      babelfuse promote --margin 0.01 --tolerance 0.03
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with user_errors():
        from mlflow.tracking import MlflowClient  # mlflow and promote (imports mlflow): ~1 s, promote only

        from babelfuse import tracking
        from babelfuse.serving.promote import check_registered, run_gate

        logs.setup()
        params = _register_params()
        name = model_name or str(params["model_name"])
        rule = gate.Rule.from_params(params, _seed(), margin=margin, alpha=alpha, tolerance=tolerance)
        manifest_path = _in_project(manifest)
        tracking.configure()
        check_registered(MlflowClient(), name)  # before a run is started for nothing
        gate_params = {"model_name": name, **asdict(rule)}
        inputs = [manifest_path] if manifest_path.exists() else []
        with tracking.stage_run("promote", gate_params, inputs=inputs, run_name="promote"):
            record = run_gate(
                name,
                rule,
                manifest_path if manifest_path.exists() else None,
                _in_project(promotions),
            )
    colour = typer.colors.GREEN if record["promote"] else typer.colors.YELLOW
    typer.secho(f"{record['decision'].upper()}: {name} v{record['challenger_version']}", fg=colour, bold=True)
    typer.echo(f"  {record['reason']}")
    if record.get("challenger_macro_f1") is not None:
        typer.echo(
            f"  macro-F1 challenger {_num(record['challenger_macro_f1'], '.4f')}, champion "
            f"{_num(record.get('champion_macro_f1'), '.4f')} (v{record.get('champion_version') or '-'}); "
            f"champion is now v{record.get('new_champion_version')}"
        )
    typer.echo(f"  logged to {_in_project(promotions)}")


# ----------------------------------------------------------------------------------- languages
languages_app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(languages_app, name="languages")
LanguagesDir = Annotated[
    Path,
    typer.Option(
        "--languages-dir",
        envvar="BABELFUSE_LANGUAGES_DIR",
        help="Folder of the <code>.yaml language files (default: the package's data/languages).",
    ),
]


@languages_app.callback(invoke_without_command=True)
def languages(
    ctx: typer.Context,
    languages_dir: LanguagesDir = text_gen.LANGUAGES_DIR,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the docs' generated language blocks instead.")
    ] = False,
) -> None:
    """Per language: generator file, eSpeak NG voice (and the voices eSpeak offers for the code),
    coverage by the text encoder, and whether data.languages lists it.

    \b
    Examples:
      babelfuse languages
      babelfuse languages check pt --languages-dir my_languages/
      babelfuse languages docs --write
    """
    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        config = _project_config()
        data = config.data
        if markdown:
            blocks = language_support.doc_blocks(
                data.languages, data.source_langs, language_support.planned_posts(config.section("data"), config.seed),
                languages_dir,
            )  # fmt: skip
            for name, text in blocks.items():
                typer.echo(f"<!-- languages:{name} -->{text}<!-- /languages:{name} -->")
            return
        rows = language_support.statuses(
            data.languages, data.source_langs, config.features.text.encoder, languages_dir
        )
        for line in language_support.table_lines(rows, config.features.text.encoder):
            typer.echo(line)


@languages_app.command("check")
def languages_check(
    code: Annotated[str, typer.Argument(help="Language code of the file to check, e.g. pt.")],
    languages_dir: LanguagesDir = text_gen.LANGUAGES_DIR,
    voice: Annotated[
        str | None,
        typer.Option(help="eSpeak NG voice to try (default: labels.LANGUAGES[code].espeak_voice)."),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Share of templates that must be nearest to their English counterpart.")
    ] = language_check.DEFAULT_THRESHOLD,
) -> None:
    """Check one language file: it loads and renders, eSpeak NG speaks it (phonemes shown), and every
    template lands nearest to its English counterpart in the default text encoder.

    Templates that do not are listed as likely mistranslations. Exit code 0 = pass, 1 = fail,
    2 = a mistake in the file or the arguments.

    \b
    Examples:
      babelfuse languages check de
      babelfuse languages check pt --languages-dir my_languages/ --voice pt-BR
    """
    with user_errors():
        text_gen.load_language(code, languages_dir)  # file mistakes first, before the encoder loads
        if voice is None and code not in LANGUAGES:
            raise BabelfuseError(
                f"'{code}' has no line in babelfuse.labels.LANGUAGES (so no voice): add one, or pass --voice "
                f"(eSpeak NG voices for '{code}': {', '.join(espeak.voices_for(code)) or 'none'})"
            )
        encoder = UseMultilingualEncoder(threads=default_threads())
        report = language_check.check_language(
            code, languages_dir, voice or LANGUAGES[code].espeak_voice, encoder, threshold
        )
    for line in language_check.report_lines(report, encoder_covers(encoder.id, code), encoder.id):
        typer.echo(line)
    if not report.passed:
        raise typer.Exit(1)


@languages_app.command("docs")
def languages_docs(
    write: Annotated[bool, typer.Option("--write", help="Rewrite the stale blocks in place.")] = False,
) -> None:
    """Check (or --write) the language blocks of README.md and docs/DATA.md against the language
    files and params.yaml. Exit code 1 when a block is stale and --write was not given.

    \b
    Examples:
      babelfuse languages docs
      babelfuse languages docs --write
    """
    with user_errors():
        config = _project_config()
        n_posts = language_support.planned_posts(config.section("data"), config.seed)
        blocks = language_support.doc_blocks(config.data.languages, config.data.source_langs, n_posts)
        stale = []
        for doc in language_support.DOC_FILES:
            path = _in_project(doc)
            text = path.read_text(encoding="utf-8")
            fresh = language_support.render_docs(text, blocks)
            if fresh != text:
                stale.append(doc)
                if write:
                    path.write_text(fresh, encoding="utf-8")
    for doc in stale:
        typer.echo(f"{doc}: {'rewritten' if write else 'stale (run: babelfuse languages docs --write)'}")
    if not stale:
        typer.echo("README.md and docs/DATA.md match the language files and params.yaml")
    if stale and not write:
        raise typer.Exit(1)


@app.command()
def monitor(
    folder: Annotated[
        Path, typer.Argument(help="The served model's inference log (register.inference_log).")
    ],
    train: Annotated[
        Path, typer.Option("--train", help="The training split the traffic is compared with.")
    ] = paths.FUSED / "train.npz",
    out: Annotated[Path, typer.Option("--report", help="Where to write the HTML report.")] = Path(
        "reports/monitor.html"
    ),
    threshold: Annotated[
        float, typer.Option("--threshold", help="Text-embedding PSI above which drift is flagged.")
    ] = monitoring.PSI_THRESHOLD,
) -> None:
    """Compare logged traffic with the training data: languages, modalities, labels, embedding drift.

    Exits 1 when the text-embedding drift is flagged (so a cron job can alert).

    \b
    Examples:
      babelfuse monitor logs/inference
    """
    with user_errors():
        train_path = _in_project(train)
        if not train_path.exists():
            raise BabelfuseError(f"--train: {train_path} not found (run the fuse stage, or pass --train)")
        summary = monitoring.compare(monitoring.read_log(folder), load_npz(train_path), threshold)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(monitoring.render_html(summary), encoding="utf-8")
    drift = summary["text_embedding_drift"]
    typer.echo(f"{summary['posts']} posts ({summary['errors']} errors); report: {out}")
    typer.echo(f"unseen-language share: {summary['unseen_language_share']}")
    for what in ("language_mix", "modality_presence", "label_distribution"):
        pair = summary[what]
        typer.echo(f"{what}: traffic {json.dumps(pair['traffic'])} | train {json.dumps(pair['train'])}")
    typer.echo(f"text-embedding PSI max {drift['max_psi']} (threshold {threshold}): "
               + ("DRIFT" if drift["drift"] else "no drift"))  # fmt: skip
    if drift["drift"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
