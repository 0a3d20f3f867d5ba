"""``timserver faults``: add, list and clear the emulator's fault rules (docs/emulator.md).

Rules live in the database, so a running server (every worker) applies a rule added here on
its next call. The flags are stable; the SDK's retry tests rely on them::

    timserver faults add --db URL --sdkappid N [--command NAME|all] [--userid ID]
                         (--code N | --latency-ms N | --drop | --fail-items)
                         [--probability P | --times N] [--seed S] [--item-probability Q]
"""

from __future__ import annotations

import json

import click

from ..emulator import state
from ..emulator.faults import ALL, FaultRule, RuleError, parse_rule
from ..protocol.commands import BY_NAME
from ..storage import Storage
from ._common import db_option, with_storage


@click.group()
def faults() -> None:
    """Fault injection: make calls fail, slow down or drop, on purpose."""


def _print(rule: FaultRule, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rule.to_json(), ensure_ascii=False))
        return
    count = "" if rule.remaining is None else f", {rule.remaining} left"
    click.echo(f"#{rule.id}  app {rule.sdkappid}  {rule.spec.describe()}  "
               f"(matched {rule.matched}{count})")


@faults.command()
@click.option("--sdkappid", type=int, required=True, help="The app whose calls the rule hits.")
@click.option("--command", "command", default=ALL, show_default=True,
              type=click.Choice([*BY_NAME, ALL]), help="The command the rule matches.")
@click.option("--userid", help="Match only calls whose body names this UserID.")
@click.option("--code", type=int,
              help="Answer this ErrorCode (e.g. 70169, 70202, 70500, 60007); with --fail-items, "
                   "the failed items' ResultCode (default 70500).")
@click.option("--latency-ms", type=int, default=0,
              help="Wait this long before answering (0 to 120000; may go with another action).")
@click.option("--drop", is_flag=True, help="Close the connection without an answer.")
@click.option("--fail-items", is_flag=True,
              help="Fail items of the batch (FailAccounts, or ResultCode != 0); the items naming "
                   "--userid, else every item (or a share: --item-probability).")
@click.option("--item-probability", type=float,
              help="With --fail-items: the chance that each item fails (default 1).")
@click.option("--probability", type=float,
              help="Fire on each matching call with this chance (0 to 1; reproducible by seed).")
@click.option("--times", type=int, help="Fire on the next N matching calls only.")
@click.option("--seed", type=int, help="Seed of the probability draws (default: random, shown).")
@click.option("--json", "as_json", is_flag=True, help="Print the rule as JSON.")
@db_option
def add(sdkappid: int, command: str, userid: str | None, code: int | None, latency_ms: int,
        drop: bool, fail_items: bool, item_probability: float | None,
        probability: float | None, times: int | None, seed: int | None, as_json: bool,
        db: str) -> None:
    """Add a fault rule to an app.

    \b
    Examples:
      timserver faults add --sdkappid N --command account_check --code 70169 --probability 0.1
      timserver faults add --sdkappid N --code 70500 --times 3
      timserver faults add --sdkappid N --command kick --drop --times 1
      timserver faults add --sdkappid N --command multiaccount_import --fail-items --userid bob
    """
    if fail_items and drop:
        raise click.UsageError("--drop and --fail-items exclude each other")
    if code is not None and drop:
        raise click.UsageError("--drop answers nothing: it cannot go with --code")
    if not (code is not None or latency_ms or drop or fail_items):
        raise click.UsageError("give an action: --code N, --latency-ms N, --drop or --fail-items")
    if probability is not None and times is not None:
        raise click.UsageError("--probability and --times exclude each other")
    raw = {"Command": command, "UserID": userid, "Code": code, "LatencyMs": latency_ms,
           "Drop": drop, "FailItems": fail_items, "ItemProbability": item_probability,
           "Probability": probability, "Times": times, "Seed": seed}
    try:
        spec = parse_rule({k: v for k, v in raw.items() if v is not None})
    except RuleError as exc:
        raise click.UsageError(str(exc)) from None

    async def work(storage: Storage) -> FaultRule:
        if await storage.get_app(sdkappid) is None:
            raise click.ClickException(f"no app with SDKAppID {sdkappid}")
        try:
            return await state.add_rule(storage, sdkappid, spec)
        except RuleError as exc:
            raise click.ClickException(str(exc)) from None
    _print(with_storage(db, work), as_json)


@faults.command("list")
@click.option("--sdkappid", type=int, help="Only this app's rules (default: every app's).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line (a file that serve --faults reads back).")
@db_option
def list_(sdkappid: int | None, as_json: bool, db: str) -> None:
    """List fault rules, with how many calls each matched."""
    rules = with_storage(db, lambda storage: state.list_rules(storage, sdkappid))
    for rule in rules:
        _print(rule, as_json)
    if not rules and not as_json:
        click.echo("No fault rules.")


@faults.command()
@click.option("--sdkappid", type=int, required=True)
@click.option("--id", "rule_id", type=int, help="Delete only this rule (default: all of the app's).")
@db_option
def clear(sdkappid: int, rule_id: int | None, db: str) -> None:
    """Delete an app's fault rules (or one of them)."""
    deleted = with_storage(db, lambda storage: state.clear_rules(storage, sdkappid, rule_id))
    if rule_id is not None and not deleted:
        raise click.ClickException(f"app {sdkappid} has no fault rule {rule_id}")
    click.echo(f"Deleted {deleted} fault rule{'s' if deleted != 1 else ''} of app {sdkappid}.")
