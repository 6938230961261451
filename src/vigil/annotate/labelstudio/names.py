"""The names shared by the labeling config, the export and the import: Label Studio's contract.

The config (:mod:`.config`) declares these controls on the ``video`` object; the export
(:mod:`.export`) writes regions under them and the import (:mod:`.imports`) reads them back:
``label`` (Choices Real/Fake), ``box`` (VideoRectangle, labelled through the ``artifact_type``
Labels), ``span`` (TimelineLabels), ``explanation`` (TextArea).

Non-L3 evidence ("normal segment" of a real clip) uses the label :data:`NORMAL_SEGMENT` in both
the box and the span controls.
"""

from __future__ import annotations

# Control and object names: the labeling config, the export and the import all use these.
VIDEO = "video"
LABEL = "label"
BOX = "box"
ARTIFACT_TYPE = "artifact_type"
SPAN = "span"
EXPLANATION = "explanation"
GROUNDING_NOTE = "grounding_note"  # a Text object (not a control): the note above a label-only task

NORMAL_SEGMENT = "Normal segment"
CHOICES = ("Real", "Fake")
