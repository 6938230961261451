"""Annotation sources: each produces :class:`vigil.core.annotation.Annotation` records.

``synthetic`` writes the zoo's ground truth as varied, grammar-valid explanations;
``labelstudio`` exports pre-annotated tasks to Label Studio and imports what humans submitted;
a teacher model is another source. Import the submodules directly: this package imports nothing.
"""
