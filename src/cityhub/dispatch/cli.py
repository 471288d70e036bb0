"""``cityhub dispatch …`` — routing rules, suggestions, automatic dispatch of the queue, training export, retraining."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cityhub.clitools import cli_actor, fail_with, id_argument, validation_problem
from cityhub.clitools import fail as _fail
from cityhub.db import session_scope
from cityhub.errors import CityhubError
from cityhub.formatting import calibration_text, percent

app = typer.Typer(no_args_is_help=True, help="Dispatch (派单): routing rules, suggestions, automatic dispatch.")
rules_app = typer.Typer(no_args_is_help=True, help="Routing rules: category × place × keywords → unit.")
thresholds_app = typer.Typer(no_args_is_help=True, help="Per-category auto-dispatch thresholds.")
app.add_typer(rules_app, name="rules")
app.add_typer(thresholds_app, name="thresholds")


def _unit_id(session: object, code: str | None) -> int | None:
    from cityhub.org.service import get_unit_by_code

    if code is None:
        return None
    unit = get_unit_by_code(session, code=code)  # type: ignore[arg-type]
    if unit is None:
        raise _fail(f"unknown unit code {code}")
    return unit.id


def _category_id(session: object, name: str | None) -> int | None:
    from cityhub.workorders.categories import find_category

    if name is None:
        return None
    found = find_category(session, name_or_path=name)  # type: ignore[arg-type]
    if found is None:
        raise _fail(f"unknown or ambiguous category {name}")
    return found.id


@rules_app.command("list")
def rules_list(
    all_: Annotated[bool, typer.Option("--all", help="Include inactive rules.")] = False,
) -> None:
    """List rules in ranking order: id, tier, priority, conditions → target."""
    from cityhub.dispatch import service

    with session_scope() as session:
        for r in service.list_rules(session, include_inactive=all_):
            target = r.target_kind.value if r.target_unit_id is None else f"unit {r.target_unit_id}"
            conditions = [
                f"category {r.category_id}" if r.category_id else "",
                f"place {r.place_unit_id}" if r.place_unit_id else "",
                ("keywords " + "、".join(r.keywords)[:60]) if r.keywords else "",
                ("not " + "、".join(r.exclude_keywords)) if r.exclude_keywords else "",
            ]
            flag = "" if r.active else " (inactive)"
            typer.echo(
                f"{r.id}\t{r.tier.value}\t{r.priority}\t{r.name}{flag}\t"
                f"{'; '.join(c for c in conditions if c) or 'any order'} → {target}"
            )


@rules_app.command("add")
def rules_add(
    name: Annotated[str, typer.Option("--name", help="What the rule is for.")],
    unit: Annotated[str | None, typer.Option("--unit", help="Target unit code.")] = None,
    local: Annotated[
        str | None, typer.Option("--local", help="Target the order's own 'community' or 'street' instead of a unit.")
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="Category name or path.")] = None,
    place: Annotated[str | None, typer.Option("--place", help="Street/community/district unit code.")] = None,
    keywords: Annotated[
        str | None, typer.Option("--keywords", help="Any of these (separated by 、 or commas).")
    ] = None,
    exclude: Annotated[str | None, typer.Option("--exclude", help="None of these.")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher wins within a tier.")] = 50,
    tier: Annotated[str | None, typer.Option("--tier", help="community | street | department | district.")] = None,
) -> None:
    """Add a routing rule."""
    from cityhub.dispatch import service
    from cityhub.dispatch.rules import TargetKind
    from cityhub.dispatch.schemas import RuleCreate

    if (unit is None) == (local is None):
        raise _fail("give exactly one of --unit CODE or --local community|street")
    if local is not None and local not in ("community", "street"):
        raise _fail("--local is 'community' or 'street'")
    try:
        with session_scope() as session:
            data = RuleCreate.model_validate(
                {
                    "name": name,
                    "priority": priority,
                    "category_id": _category_id(session, category),
                    "place_unit_id": _unit_id(session, place),
                    "keywords": keywords,
                    "exclude_keywords": exclude,
                    "target_kind": TargetKind.UNIT if unit else TargetKind(f"local_{local}"),
                    "target_unit_id": _unit_id(session, unit),
                    "tier": tier,
                }
            )
            rule = service.create_rule(session, data=data, actor=cli_actor())
            typer.echo(f"rule {rule.id} added ({rule.tier.value}, priority {rule.priority})")
    except CityhubError as exc:
        raise fail_with(exc) from None
    except ValidationError as exc:
        raise _fail(validation_problem(exc, "rule")) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None


@rules_app.command("set")
def rules_set(
    rule_id: Annotated[int, id_argument("dispatch rule", "Rule id.")],
    name: Annotated[str | None, typer.Option("--name", help="What the rule is for.")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Take part in decisions, or not (kept for later).")
    ] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Target unit code.")] = None,
    local: Annotated[
        str | None, typer.Option("--local", help="Target the order's own 'community' or 'street' instead of a unit.")
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="Category name or path ('' for any category).")
    ] = None,
    place: Annotated[
        str | None, typer.Option("--place", help="Street/community/district unit code ('' for anywhere).")
    ] = None,
    keywords: Annotated[
        str | None, typer.Option("--keywords", help="Any of these (separated by 、 or commas; '' for no condition).")
    ] = None,
    exclude: Annotated[str | None, typer.Option("--exclude", help="None of these ('' for none).")] = None,
    priority: Annotated[int | None, typer.Option("--priority", help="Higher wins within a tier.")] = None,
    tier: Annotated[
        str | None,
        typer.Option("--tier", help="community | street | department | district ('' to derive it from the target)."),
    ] = None,
) -> None:
    """Change a routing rule: only the options given (audited in the configuration log)."""
    from cityhub.dispatch import service
    from cityhub.dispatch.rules import TargetKind
    from cityhub.dispatch.schemas import RuleUpdate

    if unit is not None and local is not None:
        raise _fail("give one of --unit CODE or --local community|street, not both")
    if local is not None and local not in ("community", "street"):
        raise _fail("--local is 'community' or 'street'")
    try:
        with session_scope() as session:
            changes: dict[str, object] = {}
            for field, value in (
                ("name", name),
                ("active", active),
                ("priority", priority),
                ("keywords", keywords),
                ("exclude_keywords", exclude),
            ):
                if value is not None:
                    changes[field] = value
            if category is not None:
                changes["category_id"] = _category_id(session, category) if category.strip() else None
            if place is not None:
                changes["place_unit_id"] = _unit_id(session, place) if place.strip() else None
            if unit is not None:
                changes["target_kind"], changes["target_unit_id"] = TargetKind.UNIT, _unit_id(session, unit)
            if local is not None:
                changes["target_kind"], changes["target_unit_id"] = TargetKind(f"local_{local}"), None
            if tier is not None:
                changes["tier"] = tier.strip() or None
            if not changes:
                raise _fail("nothing to change: give at least one option")
            rule = service.update_rule(
                session, rule_id=rule_id, data=RuleUpdate.model_validate(changes), actor=cli_actor()
            )
            flag = "" if rule.active else ", inactive"
            typer.echo(f"rule {rule.id} changed ({rule.tier.value}, priority {rule.priority}{flag})")
    except CityhubError as exc:
        raise fail_with(exc) from None
    except ValidationError as exc:
        raise _fail(validation_problem(exc, "rule")) from None


@rules_app.command("remove")
def rules_remove(rule_id: Annotated[int, id_argument("dispatch rule", "Rule id.")]) -> None:
    """Remove a rule."""
    from cityhub.dispatch import service

    try:
        with session_scope() as session:
            service.delete_rule(session, rule_id=rule_id, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"rule {rule_id} removed")


@rules_app.command("seed")
def rules_seed() -> None:
    """Create the Baiyun demo rule set (needs `org seed-baiyun` and `categories seed` first; idempotent)."""
    from cityhub.dispatch import service

    with session_scope() as session:
        result = service.seed_default_rules(session)
    typer.echo(f"rules created {result['created']}, total {result['total']}")


@thresholds_app.command("list")
def thresholds_list() -> None:
    """Per-category thresholds (others use the default CITYHUB_DISPATCH_THRESHOLD)."""
    from cityhub.config import get_settings
    from cityhub.dispatch import service

    with session_scope() as session:
        for row, category in service.list_thresholds(session):
            typer.echo(f"{category.code}\t{category.path}\t{row.threshold:.3f}")
    typer.echo(f"default {get_settings().dispatch_threshold:.3f}", err=True)


@thresholds_app.command("effect")
def thresholds_effect(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """What the thresholds in force do, by the configured classifier's grouped cross-validation: per category, the
    share of its predicted held-out messages reaching the threshold (dispatched automatically) and their precision."""
    import json

    from cityhub.dispatch import service

    with session_scope() as session:
        guide = service.threshold_guide(session)
    if guide is None:
        raise _fail(
            "no classifier evaluation with the thresholds' effect: "
            "none configured (CITYHUB_DISPATCH_MODEL_PATH), or retrain it"
        )
    if as_json:
        typer.echo(json.dumps(guide.as_dict(), ensure_ascii=False))
        return

    typer.echo(f"model {guide.model} ({guide.created_at or 'unknown'}), {guide.method}, {guide.view}")
    for r in guide.rows:
        path = r.category.path if r.category else "(not in the taxonomy)"
        lowest = " ".join(f"≥{level}:{'-' if t is None else f'{t:.2f}'}" for level, t in r.lowest_for.items())
        figures = f"n={r.n}\t{percent(r.share)}\t{percent(r.precision)}\tlowest threshold for precision {lowest}"
        typer.echo(f"{r.label}\t{path}\t{r.threshold:g} (read at {r.at:.2f})\t{figures}")
    typer.echo(f"total\t\t\tn={sum(r.n for r in guide.rows)}\t{percent(guide.share)}\t{percent(guide.precision)}")
    cal = guide.calibration
    if cal and cal.get("bins"):
        typer.echo(calibration_text(cal))


@thresholds_app.command("set")
def thresholds_set(
    category: Annotated[str, typer.Argument(help="Category name or path.")],
    threshold: Annotated[float, typer.Argument(help="Probability in (0, 1].")],
) -> None:
    """Set the auto-dispatch threshold of a category and its descendants."""
    from cityhub.dispatch import service

    try:
        with session_scope() as session:
            category_id = _category_id(session, category)
            assert category_id is not None
            service.set_threshold(session, category_id=category_id, threshold=threshold, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"threshold of {category} set to {threshold}")


@thresholds_app.command("remove")
def thresholds_remove(category: Annotated[str, typer.Argument(help="Category name or path.")]) -> None:
    """Remove a category's own threshold: its nearest ancestor's, else the default, applies again."""
    from cityhub.dispatch import service

    try:
        with session_scope() as session:
            category_id = _category_id(session, category)
            assert category_id is not None
            service.delete_threshold(session, category_id=category_id, actor=cli_actor())
            applies = service.threshold_for(session, category_id=category_id)
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"threshold of {category} removed ({applies:.3f} applies)")


def _find_order(session: object, ref: str) -> object:
    from cityhub.workorders import service as orders

    order = orders.find_order(session, ref=ref)  # type: ignore[arg-type]
    if order is None:
        raise _fail(f"order {ref} not found")
    return order


@app.command("suggest")
def suggest(
    ref: Annotated[str, typer.Argument(help="Order number or id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Show the units suggested for an order, the category prediction and whether it would go automatically."""
    from cityhub.dispatch import service
    from cityhub.org.service import unit_directory

    try:
        with session_scope() as session:
            decision = service.suggest(session, order=_find_order(session, ref))  # type: ignore[arg-type]
            units = unit_directory(session)
    except CityhubError as exc:
        raise fail_with(exc) from None
    if as_json:
        typer.echo(json.dumps(decision.as_dict(), ensure_ascii=False, default=str))
        return
    typer.echo(f"{'AUTO' if decision.auto else 'QUEUE'}: {decision.reason}")
    if decision.prediction:
        top3 = ", ".join(f"{label} {p:.2f}" for label, p in decision.prediction["top3"])
        typer.echo(f"category prediction: {top3} (model {decision.model_version})")
    named = [units[i].name for i in (decision.place.street_id, decision.place.community_id) if i in units]
    typer.echo(f"place: {' / '.join(named)} ({decision.place.source})" if named else "place: not known")
    for i, c in enumerate(decision.candidates, 1):
        score = f"{c.score:.2f}" if c.score is not None else "-"
        typer.echo(f"{i}. {c.unit_name} [{c.unit_code}] score {score}")
        for reason in c.reasons:
            typer.echo(f"     {reason}")


@app.command("run")
def run(
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many orders.")] = None,
) -> None:
    """Decide for every received order, dispatching automatically where allowed (one transaction per order).

    An order whose decision fails is left as it was and named on stderr; the others are decided all the same. The
    command then exits by the rule (docs/operations.md, *Exit codes*) for the worst of the failures: 2 when a service
    it needs failed, 1 when an order refused — never 0 with orders left undecided."""
    from cityhub.clitools import exit_code
    from cityhub.dispatch import service
    from cityhub.workorders import service as orders

    with session_scope() as session:
        ids = service.pending_order_ids(session, limit=limit)
    dispatched = queued = 0
    failures: list[CityhubError] = []
    for order_id in ids:
        number: str | int = order_id
        try:
            with session_scope() as session:
                order = orders.require_order(session, order_id=order_id)
                number = order.number
                decision = service.auto_dispatch(session, order=order)
        except CityhubError as exc:
            failures.append(exc)
            typer.echo(f"order {number}: {exc.message}", err=True)
            continue
        dispatched += decision.dispatched
        queued += not decision.dispatched
    typer.echo(f"orders {len(ids)}: dispatched {dispatched}, queued {queued}, failed {len(failures)}")
    if failures:
        code = max(exit_code(e) for e in failures)
        raise _fail(f"{len(failures)} of {len(ids)} orders not decided (each named above); they stay received", code)


@app.command("outcomes")
def outcomes_command(
    period: Annotated[
        str, typer.Option("--period", help="2026-10, 2026-W43, 2026-10-05, 2026-10-01..2026-10-15, 2026-Q4 or 2026.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of the table.")] = False,
) -> None:
    """How dispatch did (派单成效): of the orders first sent to a unit in PERIOD, the share sent automatically, and
    how many of each kind the first unit kept (not returned or transferred), overall and per category."""
    from cityhub.analytics.kpi import parse_period
    from cityhub.dispatch.outcomes import Tally, outcomes

    with session_scope() as session:
        result = outcomes(session, period=parse_period(period))
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return

    def cell(t: Tally) -> str:
        return "-" if not t.dispatched else f"{t.kept}/{t.dispatched} kept ({t.kept_share:.1%})"

    share = "-" if result.automatic_share is None else f"{result.automatic_share:.1%}"
    typer.echo(f"{result.period.label}: {result.dispatched} orders first dispatched, {share} automatically")
    typer.echo(f"  automatic  {cell(result.automatic)}")
    typer.echo(f"  by hand    {cell(result.manual)}")
    for c in result.by_category:
        typer.echo(f"  {c.category or '(no category)'}: automatic {cell(c.automatic)}; by hand {cell(c.manual)}")


@app.command("export-training")
def export_training(
    out: Annotated[Path, typer.Option("--out", help="CSV to write (id,title,content,created_at,category,…).")],
) -> None:
    """Export orders a dispatcher corrected (returned and re-dispatched elsewhere, transferred, re-categorised)."""
    from cityhub.dispatch import service

    with session_scope() as session:
        result = service.export_training(session, out=out)
    typer.echo(
        f"corrected orders {result['corrected']}: written {result['written']}, "
        f"skipped {result['skipped']} (no category, merged or cancelled), "
        f"left out {result['model_category']} (category only the classifier gave); "
        f"confirmed {result['confirmed']} (dispatched by hand in the category the classifier predicted) → {out}"
    )


@app.command("retrain")
def retrain(
    data: Annotated[
        list[Path], typer.Option("--data", help="Base labelled orders CSV (id,title,content,created_at,category).")
    ],
    model: Annotated[
        Path | None,
        typer.Option("--model", help="The live model's directory (default: CITYHUB_DISPATCH_MODEL_PATH)."),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", help="Promote when the candidate's CV macro F1 ≥ the live model's minus this."),
    ] = 0.01,
    force: Annotated[bool, typer.Option("--force", help="Promote without comparing with the live model.")] = False,
    cv: Annotated[int, typer.Option("--cv", min=2, help="Folds of the grouped CV (stacking and the guard).")] = 3,
    embed_cache: Annotated[
        Path | None,
        typer.Option(
            "--embed-cache",
            help="Embedding cache directory, for a live model with a sentence encoder: only new texts are embedded.",
        ),
    ] = None,
    holdout: Annotated[
        Path | None,
        typer.Option(
            "--holdout",
            help="Labelled CSV both models are scored on for the guard (e.g. last month's orders), instead of "
            "comparing CV figures of different trainings; rows with a held-out text are left out of training.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Retrain the classifier on the base data plus the orders dispatchers corrected; promote it into the live
    model's directory only if it is not worse (servers switch without a pause)."""
    from cityhub import jobs
    from cityhub.config import get_settings
    from cityhub.db import utcnow
    from cityhub.dispatch import service
    from cityhub.dispatch.retrain import JOB_NAME
    from cityhub.dispatch.retrain import retrain as run_retrain

    target = model or get_settings().dispatch_model_path
    if not target:
        raise _fail("no model directory: give --model or set CITYHUB_DISPATCH_MODEL_PATH")
    started = utcnow()
    try:
        with session_scope() as session:
            corrections = service.training_records(session)
        result = run_retrain(
            base=data,
            corrections=corrections,
            model_dir=Path(target),
            tolerance=tolerance,
            force=force,
            folds=cv,
            embed_cache=embed_cache,
            holdout=holdout,
        )
    except CityhubError as exc:
        jobs.record_failure(JOB_NAME, error=exc.message)  # a failing weekly retrain shows on the status page
        raise fail_with(exc) from None
    with session_scope() as session:
        summary = {k: v for k, v in result.as_dict().items() if k != "skipped_rows"}
        jobs.record(session, JOB_NAME, started=started, result={**summary, "skipped_rows": len(result.skipped_rows)})
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    for row in result.skipped_rows:
        typer.echo(f"skipped {row['file']}: row {row['row']} (id {row['id']}): {row['reason']}", err=True)
    typer.echo(
        f"trained on {result.base_rows} base rows + {result.corrections} corrected orders "
        f"in {result.training_seconds} s"
    )
    for category, n in sorted(result.corrections_left_out.items()):
        typer.echo(f"left out: {n} corrected orders of category {category}, which the base data does not have")
    for category, n in sorted(result.categories_left_out.items()):
        typer.echo(f"left out: category {category}, {n} distinct messages (too few to learn)")
    if result.guard == "holdout":
        live_f1 = result.live_holdout_macro_f1
        typer.echo(
            f"hold-out: {result.holdout_rows} rows ({result.holdout_excluded} training rows with their text left out); "
            f"macro F1 candidate {result.candidate_holdout_macro_f1:.4f}, live "
            + ("-" if live_f1 is None else f"{live_f1:.4f}")
        )
    typer.echo(("promoted into " if result.promoted else "not promoted: ") + f"{result.model} ({result.reason})")
