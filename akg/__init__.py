"""Core of the AKG knowledge service: configuration, the graph connection, errors, the `akg` CLI.

Everything else (akg_loader, kge, reasoning, ui) builds on this package; it imports none of them.
"""

__version__ = "0.1.0"
