"""PostgreSQL: the tables (one schema module that the migrations follow), the write path of
a batch (receipts, raw rows, rollups, allocation segments, reservation changes), API keys,
rebuilding what ingest derives, migrations, and the connection pool with what the server
knows of the database's availability. Imports ``core`` only."""
