"""The answer to OPTIONS on a path of several handlers: 204 with the path's methods in Allow.

Litestar 2 answers OPTIONS on such a path with the methods of the first handler it
registers only (litestar#4169, fixed in Litestar 3), so each such path says its own, in a
handler named to come first (a controller's are registered in name order).
"""

from litestar import Response


def allowing(methods: str) -> Response:
    return Response(content=None, status_code=204, headers={"Allow": methods})
