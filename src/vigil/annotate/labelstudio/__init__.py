"""Human annotation through Label Studio: pre-annotated task export, submitted-annotation import.

We never talk to a Label Studio server here; we write and read its documented JSON formats, so a
project can be run anywhere and its export dropped back into Vigil.

* :mod:`.config`: :func:`~.config.labeling_config`, the project's XML. Its control names
  (:mod:`.names`) are the contract with the two modules below.
* :mod:`.export`: :func:`~.export.export_tasks` writes the task list to import ("Import
  pre-annotated data"), with the current annotation as a prediction the human corrects.
* :mod:`.imports`: :func:`~.imports.import_annotations` reads a project's JSON export back into
  ``human`` :class:`~vigil.core.annotation.Annotation` records, keeping who and when.
* :mod:`.coords`: Label Studio's frame and box conventions, shared by export and import.

Import the submodules directly: this package imports nothing.
"""
