"""``cityhub nlp …`` — classifier, address resolution."""

from pathlib import Path

import typer

from cityhub.clitools import examples, fail_with
from cityhub.clitools import fail as _fail
from cityhub.formatting import calibration_text

app = typer.Typer(no_args_is_help=True, help="Language tools: category classifier, address → jurisdiction.")


@app.command(
    "locate",
    epilog=examples(
        ("cityhub nlp locate --input addresses.txt", "one address a line"),
        ("cityhub nlp locate --input - --json --district 白云区", "stdin, JSON lines"),
    ),
)
def locate(
    input_path: str = typer.Option(
        ..., "--input", help="File with one address per line ('-' for stdin); blank lines are skipped."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line."),
    district_hint: str | None = typer.Option(None, "--district", help="District name or code to prefer."),
) -> None:
    """Resolve addresses to district / street / community (地址 → 镇街 / 村社)."""
    import json
    import sys

    from cityhub.errors import CityhubError
    from cityhub.nlp.address import default_gazetteer
    from cityhub.textfiles import decode_text, read_text, text_lines

    try:
        if input_path == "-":  # the bytes, decoded as a file's are (GBK, a BOM), not in the locale's encoding
            text = decode_text(sys.stdin.buffer.read(), name="standard input")
        else:
            text = read_text(input_path)
        lines = text_lines(text)
    except CityhubError as exc:
        raise fail_with(exc) from None
    gazetteer = default_gazetteer()
    if district_hint is not None and gazetteer.district_code(district_hint) is None:
        raise _fail(f"--district: unknown district {district_hint!r} (give a Guangzhou district's name or code)")
    for line in lines:
        if not line.strip():
            continue  # no address: nothing to answer (each answer repeats its input)
        loc = gazetteer.resolve(line.strip(), district_hint=district_hint)
        if as_json:
            typer.echo(json.dumps(loc.to_record(), ensure_ascii=False))
        else:
            flag = " (ambiguous)" if loc.ambiguous else ""
            typer.echo(
                f"{loc.input}\t{loc.district or '-'}\t{loc.street or '-'}\t{loc.community or '-'}"
                f"\t{loc.confidence:.2f}{flag}"
            )


@app.command(
    "train",
    epilog=examples(
        ("cityhub dispatch export-training --out labelled.csv", "the district's orders"),
        ("cityhub nlp train --data labelled.csv --out models/classifier", ""),
        ("cityhub nlp train --data a.csv --data b.csv --out models/new --json", ""),
    ),
)
def train_cmd(
    data: list[str] = typer.Option(..., "--data", help="Labelled orders CSV (id,title,content,created_at,category)."),
    out: str = typer.Option(..., "--out", help="Directory to write the model artefact to."),
    cv: int = typer.Option(3, "--cv", min=2, help="Folds of the grouped CV used for stacking and the report."),
    as_json: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
    encoder: str | None = typer.Option(
        None,
        "--encoder",
        help="Add a sentence-embedding block (m3e-small; needs the embed extra). Slower to train and predict.",
    ),
    embed_cache: str | None = typer.Option(
        None, "--embed-cache", help="Directory caching embeddings by text hash, so retraining re-embeds only new texts."
    ),
    fine_tune: bool = typer.Option(
        False,
        "--fine-tune",
        help="Fine-tune the encoder's top layers on the data and mix them with the stack (implies --encoder "
        "m3e-small; needs PyTorch to train, the finetune extra). +1 macro F1 point on grouped CV; ~25 min on "
        "2 cores.",
    ),
    fine_tune_layers: int = typer.Option(2, "--fine-tune-layers", min=1, help="Top encoder layers to fine-tune."),
    fine_tune_epochs: float = typer.Option(2.0, "--fine-tune-epochs", min=0.1, help="Passes over the data."),
    fine_tune_mix: str = typer.Option(
        "geometric",
        "--fine-tune-mix",
        help="How the fine-tuned member is mixed with the stack: geometric (stack^w * tuned^(1-w); more orders above "
        "a high precision) or mean (w*stack + (1-w)*tuned). Training reports both on its held-out fold.",
    ),
    joined_form: bool = typer.Option(
        True,
        "--joined-form/--no-joined-form",
        help="When the data mixes raw and word-segmented texts, drop from raw texts the stop words and punctuation "
        "the segmented ones lack (learned from the data).",
    ),
) -> None:
    """Train the category classifier (工单分类) and save a versioned artefact. Says on stderr, once the data is read,
    what it trains on and about how long that takes, and at the end the time it took."""
    import json
    import time
    from typing import Any

    from cityhub.errors import CityhubError
    from cityhub.formatting import duration
    from cityhub.nlp import classifier
    from cityhub.outfiles import check_directory

    started = time.perf_counter()

    try:
        check_directory(Path(out), "--out:", "the model")  # before the training, not after it
        records: list[classifier.LabelledOrder] = []
        reports = []
        for path in data:
            recs, report = classifier.read_labelled_csv(path)
            records += recs
            reports.append(report)
            for skip in report.skipped:
                typer.echo(f"skipped {path}: row {skip['row']} (id {skip['id']}): {skip['reason']}", err=True)
        if fine_tune:
            from cityhub.nlp.encoder import M3E_SMALL
            from cityhub.nlp.finetune import require_torch

            require_torch()  # before the encoder loads (train() checks again, for callers other than this command)
            encoder = encoder or M3E_SMALL
        config = classifier.ClassifierConfig(
            folds=cv,
            encoder=encoder,
            joined_form=joined_form,
            fine_tune=fine_tune,
            fine_tune_layers=fine_tune_layers,
            fine_tune_epochs=fine_tune_epochs,
            fine_tune_mix=fine_tune_mix,
        )
        text_encoder = None
        if encoder:
            from cityhub.nlp.encoder import CachedEncoder, get_encoder

            text_encoder = get_encoder(encoder)
            if embed_cache:
                text_encoder = CachedEncoder(text_encoder, embed_cache)
        elif embed_cache:
            raise _fail("--embed-cache needs --encoder")

        def announce() -> None:  # the records and settings accepted: minutes of silence follow
            files = f"{len(data)} file{'s' if len(data) != 1 else ''}"
            how = ", ".join(
                [f"{cv}-fold CV", *([f"encoder {encoder}"] if encoder else []), *(["fine-tuning"] if fine_tune else [])]
            )
            typer.echo(
                f"training on {len(records):,} rows from {files} ({how}): about "
                f"{duration(_rounded(classifier.rough_training_seconds(len(records), config)))} on 2 free cores, "
                "longer on a busy machine …",
                err=True,
            )

        model = classifier.train(records, config=config, sources=reports, encoder=text_encoder, on_start=announce)
        target = model.save(out)
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"done in {duration(time.perf_counter() - started)}", err=True)
    summary: dict[str, Any] = {
        "model": str(target),
        "feature_blocks": model.meta.get("feature_blocks"),
        "encoder": model.meta.get("encoder"),
        "training_seconds": model.meta.get("training_seconds"),
        "training_data": model.meta.get("training_data"),
        "joined_form": model.meta.get("joined_form"),
        "fine_tune": model.meta.get("fine_tune"),
        "evaluation": {
            part: {
                **{key: rep[key] for key in ("n", "accuracy", "macro_f1", "coverage_at_precision")},
                "ece": (rep.get("calibration") or {}).get("ece"),
            }
            for part, rep in model.meta.get("evaluation", {}).items()
            if isinstance(rep, dict)
        },
    }
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    data_summary = summary["training_data"] or {}
    typer.echo(f"model written to {target} in {summary['training_seconds']} s")
    typer.echo(f"feature blocks: {', '.join(summary['feature_blocks'] or [])}")
    typer.echo(f"records: {data_summary.get('n')}  per class: {data_summary.get('n_per_class')}")
    if data_summary.get("left_out"):
        typer.echo(
            f"left out, fewer than {cv} distinct messages (not learned): "
            + ", ".join(f"{label} ({n})" for label, n in data_summary["left_out"].items())
        )
    typer.echo(f"dedup: {data_summary.get('dedup')}")
    form = summary["joined_form"] or {}
    if form.get("dropped_words"):
        sample = " ".join(form["sample"][:12])
        typer.echo(f"joined form: {form['dropped_words']} words dropped from raw texts, e.g. {sample}")
    tuned = summary["fine_tune"]
    if tuned:
        held = tuned["held_out"]
        # The model's own mix is "mixed"; the other one is shown beside it, so the choice can be made on this data.
        names = {"stack": "stack", "tuned": "fine-tuned", "mixed": f"{tuned['mix']} mix (this model)"}
        names.update({key: f"{key.removeprefix('mixed_')} mix" for key in held if key.startswith("mixed_")})
        scores = ", ".join(
            f"{name} {held[key]['macro_f1']:.4f} / {held[key]['coverage_at_precision']['0.97']:.3f}"
            for key, name in names.items()
        )
        typer.echo(
            f"fine-tuned {tuned['tuned_layers']} encoder layers in {tuned['seconds']['total']} s; stack weight "
            f"{tuned['mixing_weight_of_stack']}; held-out macro F1 / cov@0.97 (n={tuned['held_out_rows']}): {scores}"
        )
    label = "hold-out" if tuned else "CV"
    for part, rep in summary["evaluation"].items():
        cov = rep["coverage_at_precision"]
        typer.echo(
            f"{label} {part}: n={rep['n']} accuracy={rep['accuracy']:.4f} macro_f1={rep['macro_f1']:.4f} "
            + " ".join(f"cov@{k}={v:.3f}" for k, v in cov.items())
            + ("" if rep["ece"] is None else f" ECE={rep['ece']:.3f}")
        )


def _rounded(seconds: float) -> float:
    """An estimate as precise as it is: to 10 s under two minutes, else to the minute."""
    return round(seconds, -1) if seconds < 120 else round(seconds / 60) * 60


@app.command(
    "evaluate",
    epilog=examples(
        ("cityhub nlp evaluate --model models/classifier --data holdout.csv", ""),
        ("cityhub nlp evaluate --model models/classifier --data holdout.csv --json", ""),
    ),
)
def evaluate_cmd(
    model_path: str = typer.Option(..., "--model", help="Model artefact directory."),
    data: str = typer.Option(..., "--data", help="Labelled orders CSV to score."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    embed_cache: str | None = typer.Option(
        None, "--embed-cache", help="Embedding cache directory, for models trained with --encoder."
    ),
) -> None:
    """Score a model on labelled orders: accuracy, macro F1, per class, coverage at precision, calibration."""
    import json

    from cityhub.errors import CityhubError
    from cityhub.nlp import classifier

    try:
        model = classifier.load(model_path)
        if embed_cache and model.encoder is not None:
            from cityhub.nlp.encoder import CachedEncoder

            model.encoder = CachedEncoder(model.encoder, embed_cache)
        records, report = classifier.read_labelled_csv(data)
        for skip in report.skipped:  # on stderr, as training lists them: the report on stdout stays one object
            typer.echo(f"skipped {data}: row {skip['row']} (id {skip['id']}): {skip['reason']}", err=True)
        if not records:
            raise _fail(f"{data}: no labelled rows to score ({len(report.skipped)} skipped)")
        result = classifier.evaluate(model, records)
    except CityhubError as exc:
        raise fail_with(exc) from None
    result["skipped"] = report.skipped
    result["feature_blocks"] = model.meta.get("feature_blocks") or classifier.feature_blocks(model.config)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    typer.echo(f"n={result['n']} accuracy={result['accuracy']:.4f} macro_f1={result['macro_f1']:.4f}")
    if result["unknown_categories"]:
        typer.echo(f"categories the model does not know (counted as errors): {', '.join(result['unknown_categories'])}")
    for label, s in result["per_class"].items():
        typer.echo(f"  {label}\tP={s['precision']:.3f} R={s['recall']:.3f} F1={s['f1']:.3f} n={s['support']}")
    typer.echo("coverage at precision: " + " ".join(f"{k}:{v:.3f}" for k, v in result["coverage_at_precision"].items()))
    cal = result["calibration"]
    if cal["ece"] is not None:
        typer.echo(calibration_text(cal))
    curve = result["at_threshold"]
    shown = [curve["thresholds"].index(t) for t in (0.8, 0.85, 0.9, 0.95) if t in curve["thresholds"]]
    typer.echo(
        "dispatched automatically at threshold (share, precision): "
        + " ".join(
            f"{curve['thresholds'][i]:.2f}:{curve['all']['share'][i]:.3f},{curve['all']['precision'][i] or 0:.3f}"
            for i in shown
        )
    )


@app.command("classify")
def classify_cmd(
    model_path: str = typer.Option(..., "--model", help="Model artefact directory."),
    text: str | None = typer.Option(None, "--text", help="One order text (title and content)."),
    input_path: str | None = typer.Option(
        None, "--input", help="Orders CSV (title,content columns) or plain text, one order per line."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line."),
) -> None:
    """Predict the category of orders, with calibrated probability and the top 3."""
    import json

    from cityhub.errors import CityhubError
    from cityhub.nlp import classifier

    if (text is None) == (input_path is None):
        raise _fail("give exactly one of --text or --input")
    if text is not None and not text.strip():
        raise _fail("--text is empty: give the order's title and content")
    problems: dict[int, tuple[int, str]] = {}  # rows that could not be read, answered as such in their place
    try:
        model = classifier.load(model_path)
        keys, texts = classifier.read_texts(input_path, problems=problems) if input_path else ([], [text or ""])
    except CityhubError as exc:
        raise fail_with(exc) from None
    for i in range(0, len(texts), 1000):
        batch = texts[i : i + 1000]
        said = [j for j, t in enumerate(batch) if t.strip()]
        preds = dict(zip(said, model.predict([batch[j] for j in said]), strict=True)) if said else {}
        for j in range(len(batch)):
            # A table's rows by their id, plain text by its line number (blank lines are skipped).
            key = keys[i + j] if keys else None
            named = {} if key is None else {"id": key} if isinstance(key, str) else {"line": key}
            pred = preds.get(j)
            error = "no title or content"
            if i + j in problems:  # a row that could not be read: named by its row number, with what is wrong
                row_no, error = problems[i + j]
                named, key = {"row": row_no}, f"row {row_no}"
            if pred is None:  # a row with neither title nor content: nothing to classify, no made-up category
                line = json.dumps({**named, "error": error}, ensure_ascii=False) if as_json else None
                typer.echo(line or f"{key}\t-\t{error}")
            elif as_json:
                typer.echo(json.dumps({**named, **pred.as_dict()}, ensure_ascii=False))
            else:
                typer.echo(f"{str(key) + chr(9) if key is not None else ''}{pred.label}\t{pred.probability:.3f}")
