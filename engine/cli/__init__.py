"""The `engine` command line: one module per command group, wired into one Typer app here.

The groups are imported when `app` is first asked for, not when the package is: importing
`engine.cli.common` (or one group) costs only typer and rich. Each command imports what it
needs (numpy, DuckDB, the analysis, torch) inside itself, so `engine --help` and the questions
(`fit`, `equiv`, `queue`) never load torch, diffusers, streamlit or scikit-learn."""

GROUPS = ("advise", "analysis", "checks", "app_cmd", "cluster", "quality", "queue", "report", "runs", "store_cmd", "study",
          "synthetic")


def __getattr__(name):
    if name == "app":
        import importlib
        for group in GROUPS:  # each module registers its commands on the shared app
            importlib.import_module(f"engine.cli.{group}")
        from engine.cli.common import app
        globals()["app"] = app
        return app
    raise AttributeError(f"module 'engine.cli' has no attribute {name!r}")


def main():  # console-script entry point
    from engine.cli import app
    app()


if __name__ == "__main__":
    main()
