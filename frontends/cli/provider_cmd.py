"""``options-helper provider check``: do the credentials work, which feeds answer.

Example: ``options-helper --provider alpaca provider check --json``
"""

from __future__ import annotations

import typer

from frontends.cli.options import Json

provider_app = typer.Typer(
    help="Check the market data provider.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@provider_app.command("check")
def check(
    ctx: typer.Context,
    json_out: Json = False,
) -> None:
    """Report whether the provider's credentials work and which feeds respond (keys are never printed).

    Example: options-helper --provider alpaca provider check --json
    """
    from stages.providers import check_provider

    settings = ctx.obj
    result = check_provider(settings)
    if json_out:
        from frontends.cli.render import print_json

        print_json(result.to_json())
    else:
        from rich.markup import escape

        from frontends.cli import render

        con = render.out
        status = "[green]ok[/green]" if result.ok else "[red]failing[/red]"
        con.print(f"provider {result.provider}: {status}" + (" (synthetic data)" if result.is_synthetic else ""))
        if result.credentials_source:
            con.print(f"credentials from {escape(result.credentials_source)}")
        for item in result.items:
            mark = "[green]✓[/green]" if item.ok else "[red]✗[/red]"
            con.print(f"  {mark} {escape(item.name)}: {escape(item.detail)}", highlight=False)
    if not result.ok:
        from ledger.errors import ProviderError

        failing = [i.name for i in result.items if not i.ok]
        raise ProviderError(f"provider {result.provider} is failing ({', '.join(failing) or 'see above'}); "
                            "fix what the check names above, then run `options-helper provider check` again")


__all__ = ["provider_app"]
