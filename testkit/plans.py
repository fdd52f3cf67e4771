"""Plans of the statements the service sends, on Citus: run on one shard (a router
statement), or on the shards without pulling rows to the coordinator."""

import re

from api.storage.db import connect

Sent = tuple[str, dict]  # a statement as sent, and its parameters
_TASKS = re.compile(r"Task Count: (\d+)")
_TABLE_SCAN = re.compile(r"(Seq|Index|Index Only|Bitmap Heap) Scan on")


def plan(database_url: str, statement: Sent) -> str:
    query, params = statement
    with connect(database_url) as conn, conn.transaction(force_rollback=True):
        return "\n".join(row[0] for row in conn.execute("EXPLAIN " + query, params))


def tasks(plan_text: str) -> list[int]:
    return [int(n) for n in _TASKS.findall(plan_text)]


def _of_every_org(statement: Sent) -> bool:
    """The folder's look at every organization's queue (which have queued rows; how many
    rows wait), and the watcher's at every organization's marks, rechecks and crossings due:
    they visit every shard by design, and name no organization."""
    query, params = statement
    return ("_pending" in query or "threshold" in query) and not {"org", "batch_orgs"} & set(params)


def assert_on_one_shard(database_url: str, statements: list[Sent]) -> None:
    statements = [statement for statement in statements if not _of_every_org(statement)]
    assert statements
    for statement in statements:
        found = plan(database_url, statement)
        if "Custom Scan (Citus" in found:
            assert tasks(found) == [1] * len(tasks(found)), (statement[0], found)
            assert tasks(found), found
            assert_not_through_the_coordinator(found)
        else:
            # The coordinator's own work (the advisory locks of a rebuild): no table read.
            assert not _TABLE_SCAN.search(found), (statement[0], found)


def assert_not_through_the_coordinator(plan_text: str) -> None:
    """Run on the shards: no rows pulled to the coordinator, none repartitioned."""
    assert "pull to coordinator" not in plan_text and "repartition" not in plan_text, plan_text
