"""For a developer's machine, apart from the request path: ``make run`` (an embedded
PostgreSQL cluster, demo data, a key, the server), the demo organizations (``usage-api
demo``) and the embedded cluster the tests and benchmarks start. May import every layer."""
