"""Small helpers shared by the Python examples (standard library only)."""

import os
import sys


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"set {name}")
    return value


def read_secret(path: str) -> bytes:
    """The secret exactly as ssogate reads it: the file's bytes, one trailing newline removed."""
    with open(path, "rb") as f:
        data = f.read()
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data
