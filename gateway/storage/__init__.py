"""Object storage for shot outputs, final cuts and their provenance manifests.

``open_store(settings.resolved_storage_url(), data_dir=settings.data_dir)`` gives an
:class:`ObjectStore`; the key helpers fix where each object lives.
"""

from ._base import (
    DEFAULT_CONTENT_TYPE,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    ObjectStore,
    StorageConfigError,
    StorageError,
    StoredObject,
)
from ._file import FileStore
from ._keys import (
    final_output_key,
    final_provenance_key,
    shot_output_key,
    shot_provenance_key,
    validate_key,
)
from ._open import open_store

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "FileStore",
    "InvalidKey",
    "InvalidRange",
    "ObjectNotFound",
    "ObjectStore",
    "StorageConfigError",
    "StorageError",
    "StoredObject",
    "final_output_key",
    "final_provenance_key",
    "open_store",
    "shot_output_key",
    "shot_provenance_key",
    "validate_key",
]
