"""Which database the tests run on: one PostgreSQL, or, with ``USAGE_TEST_ENGINE=citus``, a
Citus cluster of a coordinator and two workers (``make test`` runs the Citus suite so)."""

import os

CITUS = os.environ.get("USAGE_TEST_ENGINE") == "citus"


def examples(on_one_node: int) -> int:
    """Hypothesis examples for a property test of the data path. On Citus an example costs
    several times more (every statement crosses to a worker), so the Citus suite draws a
    fifth as many; the single-node run draws them all."""
    return max(on_one_node // 5, 10) if CITUS else on_one_node
