"""The optional Dagster frontend: ``frontends.dagster.defs`` holds the ``Definitions``.

Nothing outside ``defs/`` imports dagster: ``ranges`` (gap plan -> Dagster partition ranges) is
pure, so the ``gaps`` command can use it without the orchestrator extra.
"""
