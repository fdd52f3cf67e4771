"""Pure logic: no I/O, no clock of its own (time is a parameter), no framework. Time windows
and bucket arithmetic, the CloudEvents as Structs and their parsing from request bodies,
RFC 3339, token-bucket rate limits, Accept negotiation, gzip bodies. Imports nothing else of
the service; everything else may import it. Tested with hypothesis."""
