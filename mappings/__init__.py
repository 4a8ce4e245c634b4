"""crmhub's canonical schema, normalizers and declarative field maps.

Public entry points (each documented in its module):

- :mod:`mappings.schema`: ``OBJECT_TYPES``, ``MODELS``, ``REFERENCE_FIELDS``,
  ``validate_flat``, ``content_hash``, ``canonical_fields``, ``is_canonical_field``.
- :mod:`mappings.fieldmap`: ``FieldMap``, ``load_default_map``.
- :mod:`mappings.normalize`: one normalizer per kind of value (email, phone, domain...).
- :mod:`mappings.transforms`: ``TRANSFORMS``, the named value transforms of field maps.
- :mod:`mappings.errors`: ``MappingError``, ``FieldMapError``, ``NormalizeError``.

This package imports nothing else of crmhub: connectors and the hub depend on it, not the
other way round.
"""

from __future__ import annotations

from mappings.errors import FieldMapError, MappingError, NormalizeError
from mappings.fieldmap import FieldMap, load_default_map
from mappings.schema import (
    MODELS,
    OBJECT_TYPES,
    REFERENCE_FIELDS,
    canonical_fields,
    content_hash,
    is_canonical_field,
    validate_flat,
)

__all__ = [
    "MODELS",
    "OBJECT_TYPES",
    "REFERENCE_FIELDS",
    "FieldMap",
    "FieldMapError",
    "MappingError",
    "NormalizeError",
    "canonical_fields",
    "content_hash",
    "is_canonical_field",
    "load_default_map",
    "validate_flat",
]
