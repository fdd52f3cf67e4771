"""JSON request bodies read strictly, before Litestar reads them as ``data``.

Litestar converts JSON leniently ("10" taken for 10), takes the last of a key given twice (a
field could be smuggled past a proxy that checks the first) and answers a body nested 1,000
deep with a 500. A route's body is first decoded here as its Struct, strictly: each of
those, and anything else that is not one, is a 400 naming the field. What passes reads the
same leniently.
"""

import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request

from api.core.parsing import duplicate_key
from api.web.problems import ErrorItem, Problem

# msgspec's "Expected `float`, got `str` - at `$.limit`": the message, then where.
_AT = re.compile(r"(?P<message>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?", re.DOTALL)
_NAMED_FIELD = re.compile(r"field `(?P<name>[^`]*)`")


def named(field: str, message: str) -> Problem:
    """A 400 whose detail names the field."""
    return Problem(400, f"{field}: {message}", errors=[ErrorItem(field=field, message=message)])


def strict_body(body_type: type[msgspec.Struct]) -> Callable[[Request], Awaitable[None]]:
    """A ``before_request`` hook refusing any body that is not strictly a ``body_type``."""
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(body_type)

    async def check(request: Request) -> None:
        body = await request.body()
        try:
            decoder.decode(body)
        except msgspec.ValidationError as error:
            located = _AT.fullmatch(str(error))
            assert located is not None  # the pattern matches any string
            path, name = located["path"], _NAMED_FIELD.search(located["message"])
            if name is not None:  # a field missing or unknown: name it
                path = f"{path}.{name['name']}" if path else name["name"]
            raise named(path or "body", located["message"]) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as error:
            raise Problem(400, f"the body is not JSON in UTF-8: {error}") from None
        twice = duplicate_key(body)
        if twice is not None:
            raise named(twice, "is given twice: each field once")

    return check
