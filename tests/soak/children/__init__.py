"""Child processes of the soak harnesses (run with ``python -m tests.soak.children.<name>``)."""
