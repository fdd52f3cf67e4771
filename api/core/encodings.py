"""Content-Encoding of request bodies: gzip, inflated as it streams in (pure, no I/O of its own).

The size limit applies to the inflated body and is checked as it grows, so a small body that
inflates to gigabytes (a zip bomb) costs no more than the limit.
"""

import zlib
from collections.abc import AsyncIterator

GZIP = ("gzip", "x-gzip")
IDENTITY = ("", "identity")


class BodyTooLarge(Exception):
    pass


class BadEncoding(Exception):
    pass


async def gunzip(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The gzip stream ``chunks`` inflated, or ``BodyTooLarge`` once it passes ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    inflated = bytearray()
    try:
        async for chunk in chunks:
            inflated += inflater.decompress(chunk, limit + 1 - len(inflated))
            if len(inflated) > limit or inflater.unconsumed_tail:
                raise BodyTooLarge
    except zlib.error as error:
        raise BadEncoding(f"the body is not valid gzip: {error}") from None
    if not inflater.eof or inflater.unused_data:
        raise BadEncoding("the body is not one complete gzip stream")
    return bytes(inflated)
