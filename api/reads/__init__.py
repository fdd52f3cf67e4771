"""The usage sections (LLM, compute, storage, platform): each a few SQLAlchemy Core statements
over the rollups, run in one pipelined round trip, and the response Structs they fill.
Imports ``core`` and ``storage``."""
