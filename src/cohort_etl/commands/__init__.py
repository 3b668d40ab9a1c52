"""Click subcommands of ``cohort-etl``; one module each, imported lazily by cli.py."""
