"""Dataset search and download: Kaggle, Hugging Face, URLs, local paths and SQL databases
behind one ``fetch(ref)`` (fetch.py); one table for any reference (``resolve_table``,
table.py); safe archive extraction; a cache recorded in the store.

Nothing is imported here: listing the server's tools must not load the HTTP clients.
"""
