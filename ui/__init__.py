"""The explorer: a Streamlit app (`akg ui`) over the same graph, models and reasoning as the CLI.

Pages call library functions (akg_loader, kge, reasoning, akg.readonly); no Cypher lives here.
`ui.resources` holds what is cached (connections and models as resources, query results briefly),
`ui.common` the page helpers (the graph check, errors as messages), `ui.graphview` the interactive
graph, `ui.uploads` the checks on uploaded clips. `ui/app.py` is the script Streamlit runs; the
pages are the scripts in `ui/views/` (not `pages/`, which Streamlit would read as pages of its own).
"""
