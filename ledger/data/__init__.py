"""Data files shipped with the ledger: ``xnys_sessions.txt`` (the XNYS session table that
``ledger.calendar`` reads; regenerate it with ``python -m ledger.data.generate_xnys_sessions``)."""
