"""The routes: health probes, POST /events, the usage reads and the page."""
