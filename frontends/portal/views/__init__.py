"""The portal's pages: Streamlit runs each file as a script (``st.navigation``); a package only so
that tools (import-linter, mypy) see them as part of ``frontends.portal``."""
