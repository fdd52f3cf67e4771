"""Usage: the metering service. Its layers, each a folder, each importing only from the
layers above it in this list (a test checks it):

- ``core``: pure logic, no I/O: time windows and buckets, the CloudEvents and their parsing,
  RFC 3339, rate limits, content negotiation, gzip bodies.
- ``storage``: PostgreSQL: the schema, the write path (ingest, bulk import, rollups,
  allocations, reservations), API keys, rebuilds, migrations, the pool and the database's
  availability.
- ``reads``: the usage sections, each a few statements over the rollups and one answer.
- ``alerts``: usage thresholds at work: evaluating them against the reads' figures and
  delivering their crossings as signed webhooks.
- ``export``: usage leaving in bulk: every event and every hour's figures (the reads' own)
  as Parquet files in an object store or a directory. Beside ``alerts``: neither imports
  the other.
- ``web``: the HTTP service: the Litestar app, routes, authentication, errors, OpenAPI,
  logs, metrics, and the HTTP server.
- ``dev``: what runs on a developer's machine only: ``make run``, demo data, an embedded
  PostgreSQL cluster.

``settings`` (the configuration, read from the environment) and ``progress`` (long work's
progress on stderr) may be imported from every layer but ``core``; ``cli`` (the
``usage-api`` command) imports from all of them.
"""
