"""The Label Studio project's labeling config (XML), built from the taxonomy.

Its control names come from :mod:`.names`, the same ones the export writes and the import reads.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from vigil.annotate.labelstudio.names import (
    ARTIFACT_TYPE,
    BOX,
    EXPLANATION,
    GROUNDING_NOTE,
    LABEL,
    NORMAL_SEGMENT,
    SPAN,
    VIDEO,
)
from vigil.core.taxonomy import Taxonomy, load_taxonomy


def labeling_config(taxonomy: Taxonomy | None = None) -> str:
    """The Label Studio project XML; its names match what :mod:`.export` writes and :mod:`.imports` reads.

    ``frameRate`` reads the task's ``$fps`` so frame numbers mean the same in LS as in Vigil; the
    ``$grounding_note`` text is empty except on label-only tasks, which ask for grounding first.
    """
    tax = taxonomy if taxonomy is not None else load_taxonomy()
    names = [*tax.l3_names, NORMAL_SEGMENT]
    labels = "\n".join(f"    <Label value={quoteattr(n)}/>" for n in names)
    return f"""<View>
  <Header value="Is this video real or AI-generated? Mark every artifact you see."/>
  <Text name="{GROUNDING_NOTE}" value="$grounding_note"/>
  <Video name="{VIDEO}" value="$video" frameRate="$fps"/>
  <Choices name="{LABEL}" toName="{VIDEO}" choice="single" required="true" showInline="true">
    <Choice value="Real"/>
    <Choice value="Fake"/>
  </Choices>
  <Labels name="{ARTIFACT_TYPE}" toName="{VIDEO}">
{labels}
  </Labels>
  <VideoRectangle name="{BOX}" toName="{VIDEO}"/>
  <TimelineLabels name="{SPAN}" toName="{VIDEO}">
{labels}
  </TimelineLabels>
  <TextArea name="{EXPLANATION}" toName="{VIDEO}" rows="6" editable="true" maxSubmissions="1"
            placeholder="Explanation in the output grammar (leave empty to generate it from the regions)"/>
</View>
"""
