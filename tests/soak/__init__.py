"""`make soak`: long kill / contention / fault / growth harnesses (never collected by pytest).

Run ``python -m tests.soak.run_all --help``. Children are small scripts under ``children/``,
started with ``sys.executable``; each prints one ``ACK`` line per acknowledged commit.
"""
