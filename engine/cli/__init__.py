"""The `engine` command line: one module per command group, wired into one Typer app here.
Torch is imported only inside the commands that train."""
from engine.cli.common import app
from engine.cli import analysis, app_cmd, queue, runs, store_cmd, study  # noqa: F401  (registers commands)
from engine.cli import cluster  # noqa: F401,E402  (engine cluster)


def main():  # console-script entry point
    app()


if __name__ == "__main__":
    main()
