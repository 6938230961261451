"""``vigil config``, ``vigil store``, ``vigil audit``, ``vigil zoo`` and ``vigil flows``: inspect and operate."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from vigil.cli.console import console, out
from vigil.cli.errors import VigilTyper, sub_app
from vigil.cli.options import ParamsOption

config_app = sub_app("Inspect the effective configuration.")
store_app = sub_app("The object store.")
audit_app = sub_app("The lineage ledger: verify and read it.")
zoo_app = sub_app("The synthetic generator zoo and its gallery web site.")
flows_app = sub_app("Prefect deployments for production.")


def register(app: VigilTyper) -> None:
    for sub, name in [(config_app, "config"), (zoo_app, "zoo"), (audit_app, "audit"), (store_app, "store"),
                      (flows_app, "flows")]:
        app.add_typer(sub, name=name)


@config_app.command("show")
def config_show(params_file: ParamsOption = None) -> None:
    """Print the effective settings (secrets masked) and parameters."""
    from vigil.config.params import params_snapshot
    from vigil.config.settings import ENV_PREFIX, load_settings
    from vigil.jobs.runtime import load_checked_params

    settings = load_settings()
    params = load_checked_params(settings, params_file)
    table = Table(title="settings (VIGIL_* environment / .env)")
    table.add_column("variable")
    table.add_column("value")
    for name, value in settings.masked().items():
        table.add_row(f"{ENV_PREFIX}{name.upper()}", value)
    out.print(table)
    text, digest = params_snapshot(params)
    out.print(f"[bold]parameters[/bold] ({params_file or settings.params_file}, snapshot {digest[:12]}):")
    out.print(text, markup=False, highlight=False)


@store_app.command("check")
def store_check() -> None:
    """One request that proves the store's endpoint, credentials and bucket work."""
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=True)
    out.print(f"store OK: {rt.store.describe()}")


@audit_app.command("verify")
def audit_verify(as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
                 ) -> None:
    """Recompute the ledger's hash chain and cross-check the data registry and the store against it.

    Names any event that was edited, deleted, inserted or reordered, any stray object among the events,
    and every orphan: a registry tag, raw clip or model record without the event that made it, an event
    naming a tag, clip or model that is gone, an alias pointing at no model. Exits 1 on any of these.
    A lagging ledger head (a writer died before updating it; the next append repairs it) and a workspace
    without a data registry are printed as warnings and leave the exit code 0.
    """
    from vigil.jobs.audit import audit_verify as run_audit
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    report = run_audit(rt)
    if as_json:
        out.print(json.dumps(report.as_dict(), indent=1), markup=False, highlight=False)
    else:
        _print_audit(report, rt.ledger.store.uri("ledger/"))
    if not report.ok:
        raise typer.Exit(1)


def _print_audit(report, ledger_uri: str) -> None:
    """The chain's verdict, the cross-checks' verdict, then each problem (errors first) on its own line."""
    n_chain = len(report.ledger.errors)
    if report.tampered:
        out.print(f"[red]ledger TAMPERED[/red]: {n_chain} problem(s) in {report.ledger.n_events} events")
    else:
        out.print(f"ledger OK: {report.ledger.n_events} events, chain intact ({ledger_uri})")
    orphans = [p for p in report.orphans if p.severity == "error"]
    counted = f"{report.n_tags} tags, {report.n_clips} clips, {report.n_models} models"
    if orphans:
        out.print(f"[red]cross-checks FAILED[/red]: {len(orphans)} orphan(s) among {counted}")
    else:
        out.print(f"cross-checks OK: {counted}, each with its event")
    for problem in report.errors:
        out.print(f"  {problem}", markup=False, highlight=False)
    for problem in report.warnings:
        out.print(f"  warning: {problem}", markup=False, highlight=False)


@audit_app.command("log")
def audit_log(last: Annotated[int, typer.Option(help="Show the last N events.")] = 20,
              as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON lines.")] = False) -> None:
    """Show the newest ledger events (an unreadable one is left out and counted; `vigil audit verify` names it)."""
    from vigil.io.ledger import event_keys, read_events
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    everything = read_events(rt.ledger.store, skip_unreadable=True)
    unreadable = len(event_keys(rt.ledger.store)) - len(everything)
    if unreadable:
        console.print(f"[yellow]{unreadable} unreadable event(s) left out[/yellow]: run `vigil audit verify`")
    events = everything[-last:]
    if as_json:
        for e in events:
            out.print(json.dumps(e.model_dump(), default=str), markup=False, highlight=False)
        return
    table = Table("seq", "time", "action", "actor", "code rev", "params", "outputs")
    for e in events:
        table.add_row(str(e.seq), e.time[:19], e.action, e.actor, e.code_rev[:12],
                      str(e.params.get("snapshot", ""))[:12],
                      ", ".join(f"{k}={v}" for k, v in e.outputs.items() if not isinstance(v, list))[:80])
    out.print(table)


@zoo_app.command("serve")
def zoo_serve(
    params_file: ParamsOption = None,
    host: Annotated[str, typer.Option(help="Address to bind; keep it on loopback.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8765,
) -> None:
    """Serve the zoo's gallery site (pages, feed, robots.txt, media) until interrupted."""
    from vigil.config.settings import load_settings
    from vigil.jobs.runtime import load_checked_params
    from vigil.zoo.catalog import zoo_config
    from vigil.zoo.gallery import serve_forever

    settings = load_settings()
    params = load_checked_params(settings, params_file)
    console.print(f"zoo gallery on http://{host}:{port}/ (Ctrl-C to stop)")
    serve_forever(settings.workspace_path / "gallery", zoo_config(params.zoo), host=host, port=port,
                  page_size=params.zoo.page_size)


@flows_app.command("serve")
def flows_serve(params_file: ParamsOption = None) -> None:
    """Serve the production deployments (data plane on the crawl cron schedule) until interrupted."""
    from vigil.jobs.runtime import configure_prefect, load_runtime

    rt = load_runtime(params_file)
    configure_prefect(rt.settings)
    from prefect import serve

    from vigil.flows.deployments import build_deployments

    named = params_file or (rt.settings.params_file if rt.settings.params_file_explicit else None)
    serve(*build_deployments(rt.params, str(named) if named else None))
