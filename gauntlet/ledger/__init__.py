"""The contribution ledger: who built each checkpoint (docs/ledger.md, SPEC section 8.7).

:mod:`.digest` digests a live model; :mod:`.verify` checks a chain of records over
fetched bytes; :mod:`.attribution` turns a verified chain into per-hotkey credit;
:mod:`.fetch` reads records and checkpoints from buckets; :mod:`.report` prints them.
Importing this package imports none of them (nodes import :mod:`.digest` only).
"""
