"""The `yibao` command line."""

from __future__ import annotations

import os
from pathlib import Path

import typer

app = typer.Typer(help="yibao — one-stop medical-insurance settlement", no_args_is_help=True,
                  add_completion=False)


@app.command()
def up(
    data_dir: Path = typer.Option(Path(".yibao"), "--data-dir", help="where PostgreSQL data, keys and logs live"),
    port_base: int = typer.Option(8000, "--port-base", min=1024, max=65000,
                                  help="services on B+1..B+4 (eligibility, settlement, prepayment, reporting)"),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="fill a small demo city through the public APIs"),
) -> None:
    """Start PostgreSQL, the broker and the four services; Ctrl-C stops them all."""
    from deploy.launcher import run_stack

    def after_ready(stack) -> None:
        if demo:
            from deploy.demo import seed_demo
            seed_demo(urls=stack.urls(), api_keys=stack.api_keys, say=typer.echo)

    raise typer.Exit(run_stack(data_dir=data_dir, port_base=port_base, say=typer.echo, after_ready=after_ready))


@app.command("seed-demo")
def seed_demo_command(
    port_base: int = typer.Option(8000, "--port-base", min=1024, max=65000),
    data_dir: Path = typer.Option(Path(".yibao"), "--data-dir", help="where `yibao up` keeps its API keys"),
) -> None:
    """Fill the running stack with demo data through the public APIs."""
    from deploy.demo import seed_demo
    from deploy.launcher import SERVICES

    keys = os.environ.get("API_KEYS")
    if not keys:
        path = data_dir / "api-keys.json"
        if not path.exists():
            raise typer.BadParameter(f"no API_KEYS and no {path}; start the stack with `yibao up` first")
        keys = path.read_text()
    urls = {name: f"http://127.0.0.1:{port_base + i}" for i, name in enumerate(SERVICES, start=1)}
    seed_demo(urls=urls, api_keys=keys, say=typer.echo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
