"""The AWS event-stream framing (``application/vnd.amazon.eventstream``) Bedrock streams in.

A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), the
headers, the payload, and a CRC32 of everything before it. Headers here are all strings
(type 7): one byte of name length, the name, the type, two bytes of value length, the value.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

STRING_HEADER = 7
PRELUDE_LENGTH = 12
CRC_LENGTH = 4


def encode_headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", STRING_HEADER, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    raw_headers = encode_headers(headers)
    total = PRELUDE_LENGTH + len(raw_headers) + len(payload) + CRC_LENGTH
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack("!I", zlib.crc32(message))
