"""Model storage: URIs (file, s3, gs, oss, hdfs, http) to local folders, through fsspec.

Leaf package: imports nothing of serving, control or gateway, and no backend (s3fs,
gcsfs, ossfs, pyarrow, aiohttp) until a URI of its scheme is used.
"""

from pier.storage.archive import extract, is_archive
from pier.storage.backends import open_filesystem
from pier.storage.cache import CacheEntry, ModelCache
from pier.storage.options import StorageOptions
from pier.storage.redact import redact
from pier.storage.remote import Entry, Tree, exists, identity, list_dirs, ls, read_bytes, tree
from pier.storage.transfer import PushResult, push
from pier.storage.uri import SCHEMES, StorageURI, parse_uri

__all__ = [
    "SCHEMES",
    "CacheEntry",
    "Entry",
    "ModelCache",
    "PushResult",
    "StorageOptions",
    "StorageURI",
    "Tree",
    "exists",
    "extract",
    "identity",
    "is_archive",
    "list_dirs",
    "ls",
    "open_filesystem",
    "parse_uri",
    "push",
    "read_bytes",
    "redact",
    "tree",
]
