"""The `radar` command line: composes the commands each package contributes."""
import typer

app = typer.Typer(help="Account Radar", no_args_is_help=True)
