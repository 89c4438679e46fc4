"""A model file at a glance, from its header alone: for `mvc show REV:PATH`."""

from __future__ import annotations

from modelvc.modeldiff.metadata import header_metadata
from modelvc.modeldiff.results import ModelSummary, TensorInfo
from modelvc.modeldiff.version import FileVersion

NOT_A_MODEL = "not a model file of a known format"


def describe_model(version: FileVersion) -> ModelSummary:
    """Format, tensors, header metadata and warnings (e.g. a pickle that would run code:
    the readers put those in Layout.warnings, the globals themselves in the metadata).

    Reads nothing: everything comes from the layout already read from the header.
    """
    layout = version.layout
    if layout is None:
        return ModelSummary(None, version.source.size, [], {}, [NOT_A_MODEL])
    tensors = [TensorInfo(s.name, s.dtype, s.shape, s.length, s.offset, s.stride, s.deflated is not None)
               for s in layout.tensors()]  # fmt: skip
    return ModelSummary(layout.format, layout.size, tensors, header_metadata(layout), list(layout.warnings))
