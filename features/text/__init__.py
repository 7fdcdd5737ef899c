"""Qualitative feedback (QCF) text analysis, DOMAIN section 4.

Customer text -> language -> sentences -> taxonomy matches (with negation) -> evidence
rows (quotes people can read) -> per-snapshot signals. Modules, in pipeline order:
``taxonomy`` (the data files and their validation), ``language``, ``sentences``,
``normalize``, ``matcher``, ``sentiment`` and ``evidence`` (the batched pipeline and the
snapshot aggregation).
"""

from features.text.evidence import (
    EVIDENCE_COLUMNS,
    INPUT_COLUMNS,
    extract_evidence,
    iter_evidence,
)
from features.text.taxonomy import (
    BUCKETS,
    LANGUAGES,
    POLARITIES,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
)

__all__ = [
    "BUCKETS",
    "EVIDENCE_COLUMNS",
    "INPUT_COLUMNS",
    "LANGUAGES",
    "POLARITIES",
    "Taxonomy",
    "TaxonomyError",
    "extract_evidence",
    "iter_evidence",
    "load_taxonomy",
]
