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
    from vigil.config.params import load_params, params_snapshot
    from vigil.config.settings import ENV_PREFIX, load_settings

    settings = load_settings()
    params = load_params(params_file or settings.params_file)
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
def audit_verify() -> None:
    """Recompute the ledger's hash chain; name any event that was edited, deleted or reordered."""
    from vigil.io.ledger import verify_ledger
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    report = verify_ledger(rt.ledger.store)
    if report.ok:
        out.print(f"ledger OK: {report.n_events} events, chain intact ({rt.ledger.store.uri('ledger/')})")
        return
    out.print(f"[red]ledger TAMPERED[/red]: {len(report.problems)} problem(s) in {report.n_events} events")
    for problem in report.problems:
        out.print(f"  {problem}", markup=False)
    raise typer.Exit(1)


@audit_app.command("log")
def audit_log(last: Annotated[int, typer.Option(help="Show the last N events.")] = 20,
              as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON lines.")] = False) -> None:
    """Show the newest ledger events."""
    from vigil.io.ledger import read_events
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(check_store=False)
    events = read_events(rt.ledger.store)[-last:]
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
    from vigil.config.params import load_params
    from vigil.config.settings import load_settings
    from vigil.zoo.catalog import zoo_config
    from vigil.zoo.gallery import serve_forever

    settings = load_settings()
    params = load_params(params_file or settings.params_file)
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

    serve(*build_deployments(rt.params, str(params_file or rt.settings.params_file)))
