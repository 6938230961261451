"""Evaluation metrics as small functions, one kind of metric per module.

Labels are 1 = fake, 0 = real, and an unparsable answer counts as wrong (Skyra's protocol). The
modules: :mod:`~vigil.core.metrics.classification` (accuracy, recall, F1, paired balanced accuracy,
false positive rate, confusion), :mod:`~vigil.core.metrics.skyra` (Skyra's protocol per generator),
:mod:`~vigil.core.metrics.skyra_eval` (Skyra's public eval.py reproduced exactly, beside Vigil's),
:mod:`~vigil.core.metrics.calibration` (ROC-AUC, AP, ECE, reliability bins),
:mod:`~vigil.core.metrics.evidence` (grounding against ground-truth artifacts),
:mod:`~vigil.core.metrics.masks` (BrokenVideos' J, F, J&F), :mod:`~vigil.core.metrics.text`
(format compliance, ROUGE-L), :mod:`~vigil.core.metrics.latency`, :mod:`~vigil.core.metrics.slices`
(per generator, per artifact type), and :mod:`~vigil.core.metrics.summary`, whose
``evaluation_metrics`` turns predictions and an evaluation set into the JSON-serialisable report;
shared helpers live in :mod:`~vigil.core.metrics.common`. Only the mask scores read files (an
evaluation set's truth masks and timestamps); every other function is pure. Import from the
submodules; this package re-exports nothing.
"""
