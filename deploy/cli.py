"""The `yibao` command line."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import typer

app = typer.Typer(help="yibao — one-stop medical-insurance settlement", no_args_is_help=True, add_completion=False)
report_app = typer.Typer(help="Download the bureau's reports from the running reporting service.", no_args_is_help=True)
app.add_typer(report_app, name="report")

PortBase = typer.Option(
    8000,
    "--port-base",
    min=1024,
    max=65000,
    help="services on B+1..B+5 (eligibility, settlement, prepayment, reporting, gateway)",
)
DataDir = typer.Option(Path(".yibao"), "--data-dir", help="where `yibao up` keeps its API keys")


def _api_keys(data_dir: Path) -> str:
    """API_KEYS from the environment, or the keys `yibao up` wrote under its data dir."""
    keys = os.environ.get("API_KEYS")
    if keys:
        return keys
    path = data_dir / "api-keys.json"
    if not path.exists():
        raise typer.BadParameter(f"no API_KEYS and no {path}; start the stack with `yibao up` first")
    return path.read_text()


def _urls(port_base: int) -> dict[str, str]:
    from deploy.launcher import SERVICES

    return {name: f"http://127.0.0.1:{port_base + i}" for i, name in enumerate(SERVICES, start=1)}


@app.command()
def up(
    data_dir: Path = typer.Option(Path(".yibao"), "--data-dir", help="where PostgreSQL data, keys and logs live"),
    port_base: int = PortBase,
    demo: bool = typer.Option(True, "--demo/--no-demo", help="fill a small demo city through the public APIs"),
    instances: int = typer.Option(
        1, "--instances", min=1, max=8, help="processes of each service on its port (each a whole instance)"
    ),
) -> None:
    """Start PostgreSQL, the broker and the five services; Ctrl-C stops them all."""
    from deploy.launcher import run_stack

    def after_ready(stack) -> None:
        if demo:
            from deploy.demo import seed_demo

            try:
                seed_demo(urls=stack.urls(), api_keys=stack.api_keys, say=typer.echo)
            except Exception as exc:  # the stack stays up: the demo is a convenience
                typer.echo(f"demo: stopped: {exc}", err=True)
        typer.echo(f"dashboard: {stack.urls()['reporting']}/  (log in with the ops key)")

    raise typer.Exit(
        run_stack(data_dir=data_dir, port_base=port_base, say=typer.echo, after_ready=after_ready, instances=instances)
    )


@app.command("seed-demo")
def seed_demo_command(port_base: int = PortBase, data_dir: Path = DataDir) -> None:
    """Fill the running stack with demo data through the public APIs (a second run skips what exists)."""
    from deploy.demo import DemoError, seed_demo

    try:
        seed_demo(urls=_urls(port_base), api_keys=_api_keys(data_dir), say=typer.echo)
    except DemoError as exc:
        typer.echo(f"demo: {exc}", err=True)
        raise typer.Exit(1) from None


def _reader_key(api_keys: str, *, admin: bool) -> str:
    """The ops key (or admin when asked, or when there is no ops key)."""
    keys = json.loads(api_keys)
    wanted = ("admin",) if admin else ("ops", "admin")
    for role in wanted:
        for key, spec in keys.items():
            if spec.get("role") == role:
                return key
    raise typer.BadParameter(f"API_KEYS has no {' or '.join(wanted)} key")


def _download(path: str, params: dict, *, out: Path, port_base: int, data_dir: Path, admin: bool = False) -> None:
    """GET a report in the format the file name asks for and write it to `out`."""
    import httpx

    suffix = out.suffix.lower().lstrip(".")
    if suffix not in ("xlsx", "csv", "json"):
        raise typer.BadParameter("--out must end in .xlsx, .csv or .json")
    base = os.environ.get("REPORTING_URL") or _urls(port_base)["reporting"]
    headers = {"X-Api-Key": _reader_key(_api_keys(data_dir), admin=admin)}
    try:
        response = httpx.get(f"{base}{path}", params={**params, "format": suffix}, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        typer.echo(
            f"the reporting service at {base} did not answer ({type(exc).__name__}); is `yibao up` running?", err=True
        )
        raise typer.Exit(1) from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:300]
        typer.echo(f"{path}: {response.status_code} {detail}", err=True)
        raise typer.Exit(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(response.content)
    typer.echo(f"wrote {out} ({len(response.content)} bytes)")


DateOption = typer.Option(..., "--date", help="YYYY-MM-DD")
OutOption = typer.Option(..., "--out", help="FILE.xlsx, FILE.csv or FILE.json")


@report_app.command("daily")
def report_daily(
    date: str = DateOption,
    out: Path = OutOption,
    port_base: int = PortBase,
    data_dir: Path = DataDir,
    cumulative: bool = typer.Option(False, "--cumulative", help="everything up to the date (first report)"),
) -> None:
    """附件2: COVID patients' settlements of the business day."""
    _download(
        "/v1/reports/daily",
        {"date": date, "cumulative": str(cumulative).lower()},
        out=out,
        port_base=port_base,
        data_dir=data_dir,
    )


@report_app.command("covid-ledger")
def report_covid_ledger(
    date: str = DateOption,
    out: Path = OutOption,
    port_base: int = PortBase,
    data_dir: Path = DataDir,
    unmasked: bool = typer.Option(False, "--unmasked", help="names and ID numbers in full (admin key)"),
) -> None:
    """附件3 for the filing date: published cases up to 17:00 the day before."""
    _download(
        "/v1/reports/covid-ledger", {"date": date}, out=out, port_base=port_base, data_dir=data_dir, admin=unmasked
    )


@report_app.command("prepayments")
def report_prepayments(
    date: str = DateOption, out: Path = OutOption, port_base: int = PortBase, data_dir: Path = DataDir
) -> None:
    """附件4 for the filing date: special prepayments per pooling area up to 17:00 the day before."""
    _download("/v1/reports/prepayments", {"date": date}, out=out, port_base=port_base, data_dir=data_dir)


@report_app.command("two-diseases")
def report_two_diseases(
    month: str = typer.Option(..., "--month", help="YYYY-MM"),
    out: Path = OutOption,
    port_base: int = PortBase,
    data_dir: Path = DataDir,
) -> None:
    """两病 monthly statistics."""
    _download("/v1/reports/two-diseases", {"month": month}, out=out, port_base=port_base, data_dir=data_dir)


@report_app.command("indicators")
def report_indicators(
    year: int = typer.Option(..., "--year"), out: Path = OutOption, port_base: int = PortBase, data_dir: Path = DataDir
) -> None:
    """Institution indicators of a year."""
    _download("/v1/reports/indicators", {"year": year}, out=out, port_base=port_base, data_dir=data_dir)


@app.command()
def replay(
    topic: list[str] = typer.Option(None, "--topic", help="a topic to rebuild from (repeatable; default: all)"),
    apply: bool = typer.Option(False, "--apply", help="replace the live read models by the rebuilt ones"),
    keep: bool = typer.Option(False, "--keep", help="keep the scratch schema for inspection"),
    timeout: float = typer.Option(1800, "--timeout", min=1, help="seconds allowed to read the topics to their end"),
    port_base: int = PortBase,
) -> None:
    """Rebuild reporting's read models from the topics (offset 0) into a scratch schema and compare them with the
    live ones; exit 1 on a difference unless --apply replaced the live rows. DATABASE_URL and KAFKA_BOOTSTRAP
    default to the embedded ones of `yibao up --port-base B`."""
    from deploy.launcher import BROKER_OFFSET, PG_OFFSET
    from services.reporting import replay as rebuild

    try:
        topics = rebuild.check_topics(topic)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    database_url = os.environ.get("DATABASE_URL") or f"postgresql://postgres@127.0.0.1:{port_base + PG_OFFSET}/yibao"
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or f"127.0.0.1:{port_base + BROKER_OFFSET}"
    try:
        code = asyncio.run(_replay(database_url, bootstrap, topics, apply=apply, keep=keep, timeout=timeout))
    except (TimeoutError, OSError) as exc:
        typer.echo(f"replay failed: {exc}", err=True)
        code = 2
    raise typer.Exit(code)


async def _replay(
    database_url: str, bootstrap: str, topics: tuple[str, ...], *, apply: bool, keep: bool, timeout: float
) -> int:
    from services.reporting import replay as rebuild

    try:
        done = await rebuild.rebuild(database_url, bootstrap=bootstrap, topics=topics, timeout=timeout)
        for name in topics:
            typer.echo(f"{name:<24} read {done.read.get(name, 0):>7}  applied {done.applied.get(name, 0):>7}")
        typer.echo(f"rebuilt into schema {rebuild.SCRATCH} in {done.seconds:.1f} s")
        differences = await rebuild.compare(database_url, topics=topics)
        for d in differences:
            typer.echo(f"DIFFERENT {d.topic} → {d.table}: {d.only_live} rows only live, {d.only_rebuilt} only rebuilt")
            for line in d.sample:
                typer.echo(f"    {line[:300]}")
        if not differences:
            typer.echo("the live read models equal the rebuilt ones")
            return 0
        if apply:
            await rebuild.replace_live(database_url, topics=topics)
            typer.echo("live read models replaced by the rebuilt ones")
            return 0
        typer.echo("run again with --apply to replace the live rows (a broker that lost its log rebuilds less)")
        return 1
    finally:
        if not keep:
            await rebuild.drop_scratch(database_url)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
