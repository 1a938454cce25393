"""Fuzzing every input the project parses (Hypothesis, quick by default; FUZZ_EXAMPLES=1000 for long runs)."""
