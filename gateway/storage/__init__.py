"""Object storage for shot outputs, final cuts and their provenance manifests.

``open_store(settings.resolved_storage_url(), data_dir=settings.data_dir)`` gives an
:class:`ObjectStore` (:class:`FileStore` for a folder, :class:`S3Store` for ``s3://``,
which needs the ``s3`` extra); the key helpers fix where each object lives.
"""

from ._base import (
    DEFAULT_CONTENT_TYPE,
    ChecksumMismatch,
    InvalidKey,
    InvalidMetadata,
    InvalidRange,
    ObjectNotFound,
    ObjectStore,
    StorageConfigError,
    StorageError,
    StorageServiceError,
    StoredObject,
)
from ._file import FileStore
from ._keys import (
    final_output_key,
    final_provenance_key,
    shot_output_key,
    shot_provenance_key,
    validate_key,
    validate_metadata,
)
from ._open import open_store
from ._s3 import S3Store, make_s3_client

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "ChecksumMismatch",
    "FileStore",
    "InvalidKey",
    "InvalidMetadata",
    "InvalidRange",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "StorageConfigError",
    "StorageError",
    "StorageServiceError",
    "StoredObject",
    "final_output_key",
    "final_provenance_key",
    "make_s3_client",
    "open_store",
    "shot_output_key",
    "shot_provenance_key",
    "validate_key",
    "validate_metadata",
]
