"""The AKG knowledge service: an audio-centric knowledge graph, its curation, embeddings and reasoning.

The public Python API (docs/api.md) is importable from here:

    import akg
    kg = akg.open()
    kg.ingest(["AKG_pruned.tsv", "AKG_test.tsv"])
    model = akg.train(kg, preset="fast", epochs=30)

This package is also the core every other package builds on (settings, the graph connection,
names, graph versions, errors, the CLAP encoders); the core modules import none of the others. The
API names above live in akg.api, the top layer, and are loaded on first use so that importing a
core module (`from akg.config import Settings`) never pulls in the rest.
"""

__version__ = "0.1.0"

API = ("open", "fetch_dataset", "data_dir", "KnowledgeGraph", "train", "load_model", "models", "import_embeddings", "Model",
       "classify", "zeroshot_eval", "index", "search", "tag", "retrieval_eval",
       "Settings", "AkgError", "InputError", "IngestReport", "Table", "Report", "Evaluation", "ClassifyReport")
__all__ = [*API, "__version__"]


def __getattr__(name: str):
    if name in ("Settings",):
        from akg.config import Settings

        return Settings
    if name in ("AkgError", "InputError"):
        from akg import errors

        return getattr(errors, name)
    if name in API:
        from akg import api

        return getattr(api, name)
    raise AttributeError(f"module 'akg' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
