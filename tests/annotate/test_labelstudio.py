"""Label Studio: the task export matches LS's import format; submitted exports import faithfully."""

from __future__ import annotations

import copy
import hashlib
import json
import xml.etree.ElementTree as ET

import pytest

from vigil.annotate.labelstudio.config import labeling_config
from vigil.annotate.labelstudio.export import ExportItem, export_tasks
from vigil.annotate.labelstudio.imports import ImportResult, import_annotations
from vigil.annotate.labelstudio.names import ARTIFACT_TYPE, BOX, EXPLANATION, LABEL, NORMAL_SEGMENT, SPAN, VIDEO
from vigil.annotate.synthetic import synthetic_annotation
from vigil.core.annotation import AnnotatedArtifact, Annotation, Provenance
from vigil.core.grammar import check
from vigil.core.records import ArtifactTruth
from vigil.core.taxonomy import load_taxonomy

TAX = load_taxonomy()
PV, TV = "grammar-v1", TAX.version
FPS, DURATION = 24.0, 6.0


def sid(n) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def fake_annotation(n=0) -> Annotation:
    arts = [ArtifactTruth(type="Shape Distortion", t=(1.2, 2.75), bbox=(0.12, 0.3, 0.48, 0.77)),
            ArtifactTruth(type="Unnatural Blur", t=(3.0, 5.5), bbox=(0.5, 0.05, 0.95, 0.4)),
            ArtifactTruth(type="Shape Distortion", t=(4.0, 6.0), bbox=(0.0, 0.6, 0.3, 1.0))]
    return synthetic_annotation(sid(n), "fake", arts, DURATION, prompt_version=PV,
                                taxonomy_version=TV)


def real_annotation(n=1) -> Annotation:
    return synthetic_annotation(sid(n), "real", [], DURATION, prompt_version=PV, taxonomy_version=TV)


def item(ann: Annotation | None, n=0) -> ExportItem:
    s = ann.sample_id if ann is not None else sid(n)
    return ExportItem(sample_id=s, video_url=f"https://media.example/{s}.mp4",
                      frame_urls=tuple(f"https://media.example/{s}/{i}.png" for i in range(1, 4)),
                      duration_s=DURATION, fps=FPS, annotation=ann)


def submit(tasks, *, completed_by=7, created_at="2025-03-09T22:16:08.728353Z", edit=None):
    """What Label Studio exports after a human submits each pre-annotation unchanged."""
    out = []
    for i, task in enumerate(copy.deepcopy(tasks)):
        result = copy.deepcopy(task["predictions"][0]["result"]) if task["predictions"] else []
        for r in result:
            r.pop("origin", None)
            r["origin"] = "prediction"
        ann = {"id": 1000 + i, "completed_by": completed_by, "result": result,
               "was_cancelled": False, "ground_truth": False, "created_at": created_at,
               "updated_at": created_at, "lead_time": 12.5, "task": i + 1, "project": 3,
               "prediction": {}, "result_count": 0}
        if edit is not None:
            edit(ann)
        out.append({"id": i + 1, "data": task["data"], "annotations": [ann],
                    "predictions": task["predictions"], "project": 3,
                    "created_at": "2025-03-01T10:00:00Z", "updated_at": created_at})
    return out


def write(tmp_path, doc, name="export.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


# ------------------------------------------------------------------------------ config


def test_labeling_config_names_match_the_export():
    root = ET.fromstring(labeling_config())
    assert root.tag == "View"
    by_name = {el.get("name"): el for el in root.iter() if el.get("name")}
    assert by_name[VIDEO].tag == "Video" and by_name[VIDEO].get("value") == "$video"
    assert by_name[VIDEO].get("frameRate") == "$fps"
    assert by_name[LABEL].tag == "Choices"
    assert [c.get("value") for c in by_name[LABEL]] == ["Real", "Fake"]
    assert by_name[BOX].tag == "VideoRectangle"
    assert by_name[ARTIFACT_TYPE].tag == "Labels"
    assert by_name[SPAN].tag == "TimelineLabels"
    assert by_name[EXPLANATION].tag == "TextArea"
    for name in (LABEL, BOX, ARTIFACT_TYPE, SPAN, EXPLANATION):
        assert by_name[name].get("toName") == VIDEO
    for name in (ARTIFACT_TYPE, SPAN):
        values = [lab.get("value") for lab in by_name[name]]
        assert set(TAX.l3_names) <= set(values) and NORMAL_SEGMENT in values


# ------------------------------------------------------------------------------ export format


def _format_errors(tasks) -> list[str]:
    """Label Studio's import format for these tasks, checked field by field."""
    errs = []
    allowed = {"choices": LABEL, "videorectangle": BOX, "timelinelabels": SPAN, "textarea": EXPLANATION}
    if not isinstance(tasks, list):
        return ["top level is not a list"]
    for i, t in enumerate(tasks):
        e = lambda msg, i=i: errs.append(f"task {i}: {msg}")  # noqa: E731
        if set(t) - {"data", "predictions"}:
            e(f"unexpected keys {set(t)}")
        d = t.get("data", {})
        if not (isinstance(d.get("video"), str) and isinstance(d.get("frames"), list)
                and all(isinstance(f, str) for f in d["frames"])
                and isinstance(d.get("sample_id"), str)
                and isinstance(d.get("duration_s"), float) and isinstance(d.get("fps"), float)):
            e(f"bad data {d}")
        for p in t.get("predictions", []):
            if not isinstance(p.get("model_version"), str) or not isinstance(p.get("result"), list):
                e("prediction without model_version/result")
            ids = [r.get("id") for r in p["result"]]
            if len(set(ids)) != len(ids) or not all(isinstance(x, str) and x for x in ids):
                e(f"region ids not unique strings: {ids}")
            for r in p["result"]:
                if allowed.get(r.get("type")) != r.get("from_name") or r.get("to_name") != VIDEO:
                    e(f"bad names {r}")
                v = r["value"]
                if r["type"] == "choices":
                    if v != {"choices": [v["choices"][0]]} or v["choices"][0] not in ("Real", "Fake"):
                        e(f"bad choices {v}")
                elif r["type"] == "textarea":
                    if not (isinstance(v["text"], list) and all(isinstance(x, str) for x in v["text"])):
                        e(f"bad text {v}")
                elif r["type"] == "timelinelabels":
                    rg = v["ranges"]
                    if not (len(v["timelinelabels"]) == 1 and rg and all(
                            type(x["start"]) is int and type(x["end"]) is int
                            and 1 <= x["start"] <= x["end"] for x in rg)):
                        e(f"bad timelinelabels {v}")
                elif r["type"] == "videorectangle":
                    if not (type(v["framesCount"]) is int and isinstance(v["duration"], float)
                            and len(v["labels"]) == 1 and v["sequence"]):
                        e(f"bad videorectangle {v}")
                    for kf in v["sequence"]:
                        if type(kf["frame"]) is not int or not 1 <= kf["frame"] <= v["framesCount"]:
                            e(f"bad frame {kf}")
                        if type(kf["enabled"]) is not bool or not isinstance(kf["time"], float):
                            e(f"bad keyframe {kf}")
                        for k in ("x", "y", "width", "height", "rotation"):
                            if not isinstance(kf[k], (int, float)) or not 0 <= kf[k] <= 100:
                                e(f"{k} out of 0-100 {kf}")
                        if kf["x"] + kf["width"] > 100 + 1e-6 or kf["y"] + kf["height"] > 100 + 1e-6:
                            e(f"box leaves the frame {kf}")
                    if v["sequence"][-1]["enabled"] is not False:
                        e("track does not end at its last keyframe")
    return errs


def test_export_matches_label_studio_import_format(tmp_path):
    anns = [fake_annotation(0), real_annotation(1)]
    path = export_tasks([item(a) for a in anns] + [item(None, 9)], tmp_path / "out" / "tasks.json",
                        model_version="zoo-ground-truth@1")
    tasks = json.loads(path.read_text())
    assert _format_errors(tasks) == []
    assert [t["data"]["sample_id"] for t in tasks] == [anns[0].sample_id, anns[1].sample_id, sid(9)]
    assert tasks[2]["predictions"] == []
    fake = tasks[0]["predictions"][0]
    assert fake["model_version"] == "zoo-ground-truth@1"
    rects = [r for r in fake["result"] if r["type"] == "videorectangle"]
    spans = [r for r in fake["result"] if r["type"] == "timelinelabels"]
    assert len(rects) == len(spans) == 3
    # Shape Distortion at t=[1.2, 2.75] s, 24 fps: frames 29 (1.2*24+1) to 66 (ceil(2.75*24)).
    seq = rects[0]["value"]["sequence"]
    assert [(k["frame"], k["enabled"]) for k in seq] == [(29, True), (66, False)]
    assert spans[0]["value"]["ranges"] == [{"start": 29, "end": 66}]
    assert seq[0]["x"] == pytest.approx(12) and seq[0]["width"] == pytest.approx(36)
    text = [r for r in fake["result"] if r["type"] == "textarea"][0]["value"]["text"][0]
    assert text == anns[0].explanation
    real_spans = [r for r in tasks[1]["predictions"][0]["result"] if r["type"] == "timelinelabels"]
    assert {r["value"]["timelinelabels"][0] for r in real_spans} == {NORMAL_SEGMENT}
    assert not list(path.parent.glob(".*tmp"))  # atomic write leaves no temporary file


def test_export_replaces_atomically_and_rejects_mismatched_items(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text("old")
    export_tasks([item(fake_annotation())], path, model_version="m")
    assert json.loads(path.read_text())[0]["predictions"]
    bad = ExportItem(sid("other"), "u", (), DURATION, FPS, fake_annotation())
    with pytest.raises(ValueError):
        export_tasks([bad], path, model_version="m")
    assert json.loads(path.read_text())[0]["predictions"]  # untouched by the failed export
    assert len(list(tmp_path.iterdir())) == 1


def test_label_only_clips_are_exported_first_flagged_with_the_verdict_alone(tmp_path):
    from vigil.annotate.label_only import label_only_annotation

    # given a grounded fake, a real, and a crawled fake whose annotation is label-only, in that order
    lo = label_only_annotation(sid(5), "fake", prompt_version=PV, taxonomy_version=TV)
    anns = [fake_annotation(0), real_annotation(1), lo]
    # when they are exported
    tasks = json.loads(export_tasks([item(a) for a in anns], tmp_path / "t.json", model_version="m").read_text())
    # then the label-only task comes first, flagged and prioritised with a note; the rest keep their order
    assert _format_errors(tasks) == []
    assert [t["data"]["sample_id"] for t in tasks] == [lo.sample_id, anns[0].sample_id, anns[1].sample_id]
    assert [(t["data"]["needs_grounding"], t["data"]["priority"]) for t in tasks] == [(True, 1), (False, 0), (False, 0)]
    assert "no artifact has been localised" in tasks[0]["data"]["grounding_note"]
    assert tasks[1]["data"]["grounding_note"] == ""
    # and its pre-annotation is the verdict alone: no regions, no pre-filled text
    assert [r["type"] for r in tasks[0]["predictions"][0]["result"]] == ["choices"]
    assert tasks[0]["predictions"][0]["result"][0]["value"] == {"choices": ["Fake"]}
    # and the labeling config shows the note
    notes = [el for el in ET.fromstring(labeling_config()).iter("Text") if el.get("value") == "$grounding_note"]
    assert len(notes) == 1


def test_a_person_grounding_a_label_only_task_gives_a_grounded_human_record(tmp_path):
    from vigil.annotate.label_only import label_only_annotation

    lo = label_only_annotation(sid(6), "fake", prompt_version=PV, taxonomy_version=TV)
    tasks = json.loads(export_tasks([item(lo)], tmp_path / "t.json", model_version="m").read_text())

    def ground(a):  # the person keeps Fake and draws one artifact, box and span
        a["result"] += [
            {"id": "b1", "from_name": BOX, "to_name": VIDEO, "type": "videorectangle",
             "value": {"framesCount": 144, "duration": DURATION, "labels": ["Unnatural Blur"], "sequence": [
                 {"frame": 25, "time": 1.0, "x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0, "rotation": 0,
                  "enabled": True},
                 {"frame": 72, "time": 2.958333, "x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0, "rotation": 0,
                  "enabled": False}]}},
            {"id": "s1", "from_name": SPAN, "to_name": VIDEO, "type": "timelinelabels",
             "value": {"ranges": [{"start": 25, "end": 72}], "timelinelabels": ["Unnatural Blur"]}}]

    res = import_annotations(write(tmp_path, submit(tasks, completed_by={"id": 4, "email": "cy@x.org"}, edit=ground)),
                             prompt_version=PV, taxonomy_version=TV)
    # then the import is a grounded human annotation of the same clip, its explanation rendered from the regions
    (human,) = res
    assert res.problems == ()
    assert human.provenance.kind == "human" and human.label == "fake" and human.status == "accepted"
    assert human.artifacts == (AnnotatedArtifact(type="Unnatural Blur", t=(1.0, 3.0), bbox=(0.1, 0.2, 0.4, 0.6)),)
    out = check(human.explanation, duration_s=DURATION)
    assert out.ok and [e.type for e in out.evidence] == ["Unnatural Blur"]


# ------------------------------------------------------------------------------ import


def _assert_same(imported: Annotation, original: Annotation):
    assert imported.sample_id == original.sample_id
    assert imported.label == original.label
    got = sorted(imported.artifacts, key=lambda a: (a.t[0], a.type or ""))
    want = sorted(original.artifacts, key=lambda a: (a.t[0], a.type or ""))
    assert [a.type for a in got] == [a.type for a in want]
    for g, w in zip(got, want):
        assert all(abs(x - y) <= 1 / FPS + 1e-9 for x, y in zip(g.t, w.t)), (g.t, w.t)
        assert all(abs(x - y) <= 1e-3 for x, y in zip(g.bbox, w.bbox)), (g.bbox, w.bbox)


@pytest.mark.parametrize("completed_by,who", [
    (7, "user-7"),
    ({"id": 7, "first_name": "Ada", "last_name": "L", "email": "ada@example.org"}, "ada@example.org"),
])
def test_round_trip_of_an_unchanged_pre_annotation(tmp_path, completed_by, who):
    anns = [fake_annotation(0), real_annotation(1)]
    tasks = json.loads(export_tasks([item(a) for a in anns], tmp_path / "t.json",
                                    model_version="m").read_text())
    res = import_annotations(write(tmp_path, submit(tasks, completed_by=completed_by)),
                             prompt_version=PV, taxonomy_version=TV)
    assert isinstance(res, ImportResult) and res.problems == ()
    assert len(res) == 2
    for imported, original in zip(res, anns):
        _assert_same(imported, original)
        assert imported.status == "accepted" and imported.violations == ()
        assert imported.explanation == original.explanation  # the human kept the text
        # ... so the artifacts are the text's (0.01 s precise), not the frame-quantised regions
        order = lambda arts: sorted(arts, key=lambda a: (a.t, a.type or ""))  # noqa: E731
        assert order(imported.artifacts) == order(a.model_copy(update={"mask_uri": None})
                                                  for a in original.artifacts)
        assert imported.provenance == Provenance(kind="human", annotator=who, prompt_version=PV,
                                                 taxonomy_version=TV, annotator_version="1")
        assert imported.created_at == "2025-03-09T22:16:08.728353+00:00"


def test_import_without_textarea_renders_the_explanation(tmp_path):
    ann = fake_annotation(0)
    tasks = json.loads(export_tasks([item(ann)], tmp_path / "t.json", model_version="m").read_text())
    drop = lambda a: a.update(result=[r for r in a["result"] if r["type"] != "textarea"])  # noqa: E731
    (imported,) = import_annotations(write(tmp_path, submit(tasks, edit=drop)),
                                     prompt_version=PV, taxonomy_version=TV)
    _assert_same(imported, ann)
    out = check(imported.explanation, duration_s=DURATION)
    assert out.ok and out.label == "fake" and len(out.evidence) == 3
    assert imported.status == "accepted"


def test_edited_export_imports_the_humans_version(tmp_path):
    """A real pre-annotation; the human says Fake and turns a moved box into an artifact."""
    ann = real_annotation(1)
    tasks = json.loads(export_tasks([item(ann)], tmp_path / "t.json", model_version="m").read_text())

    def edit(a):
        for r in a["result"]:
            if r["type"] == "choices":
                r["value"]["choices"] = ["Fake"]
        rect = next(r for r in a["result"] if r["type"] == "videorectangle")
        span = next(r for r in a["result"] if r["type"] == "timelinelabels")
        rect["value"]["labels"] = ["Lighting Inconsistency"]
        span["value"]["timelinelabels"] = ["Lighting Inconsistency"]
        span["value"]["ranges"] = [{"start": 25, "end": 72}]  # 1.0 s .. 3.0 s
        for kf in rect["value"]["sequence"]:
            kf.update(x=10.0, y=20.0, width=30.0, height=40.0)
        rect["value"]["sequence"][0]["frame"], rect["value"]["sequence"][-1]["frame"] = 25, 72
        # everything else (the other normal segments) is removed by the human
        a["result"] = [r for r in a["result"] if r["type"] in ("choices", "textarea")
                       or r is rect or r is span]

    res = import_annotations(write(tmp_path, submit(tasks, completed_by={"id": 3, "email": "bo@x.org"},
                                                    edit=edit)),
                             prompt_version=PV, taxonomy_version=TV)
    (imported,) = res
    assert imported.label == "fake" and imported.status == "accepted"
    assert imported.artifacts == (AnnotatedArtifact(type="Lighting Inconsistency", t=(1.0, 3.0),
                                                    bbox=(0.1, 0.2, 0.4, 0.6)),)
    # The pre-filled text said Real about other regions: replaced by the human's regions, flagged.
    out = check(imported.explanation, duration_s=DURATION)
    assert out.ok and out.label == "fake"
    assert [(e.type, e.t, e.bbox) for e in out.evidence] == [
        ("Lighting Inconsistency", (1.0, 3.0), (0.1, 0.2, 0.4, 0.6))]
    assert [p.severity for p in res.problems] == ["warning"]
    assert "re-rendered" in res.problems[0].message
    assert imported.provenance.annotator == "bo@x.org"


def test_moved_box_with_a_hand_edited_text_keeps_the_text(tmp_path):
    ann = fake_annotation(0)
    tasks = json.loads(export_tasks([item(ann)], tmp_path / "t.json", model_version="m").read_text())
    new_text = ("<think>The arm <type>Shape Distortion</type> in <t>[1.20, 2.75]</t> at "
                "<bbox>[0.12, 0.30, 0.48, 0.77]</bbox> bends. The sky <type>Unnatural Blur</type> in "
                "<t>[3.00, 5.50]</t> at <bbox>[0.50, 0.05, 0.95, 0.40]</bbox> smears; the leg "
                "<type>Shape Distortion</type> in <t>[4.00, 6.00]</t> at <bbox>[0.00, 0.60, 0.30, 1.00]"
                "</bbox> melts.</think><answer>Fake</answer>")
    edit = lambda a: [r["value"].update(text=[new_text]) for r in a["result"] if r["type"] == "textarea"]  # noqa: E731
    res = import_annotations(write(tmp_path, submit(tasks, edit=edit)), prompt_version=PV,
                             taxonomy_version=TV)
    assert res.problems == () and res[0].explanation == new_text


def test_cancelled_annotations_are_skipped(tmp_path):
    anns = [fake_annotation(0), real_annotation(1)]
    tasks = json.loads(export_tasks([item(a) for a in anns], tmp_path / "t.json",
                                    model_version="m").read_text())
    doc = submit(tasks)
    doc[0]["annotations"][0]["was_cancelled"] = True
    doc[0]["annotations"][0]["result"] = []
    second = copy.deepcopy(doc[1]["annotations"][0])
    second.update(id=99, completed_by=8, was_cancelled=True)
    doc[1]["annotations"].append(second)
    res = import_annotations(write(tmp_path, doc), prompt_version=PV, taxonomy_version=TV)
    assert [a.sample_id for a in res] == [anns[1].sample_id]
    assert res.cancelled == 2 and res.problems == ()


def test_malformed_tasks_are_reported_not_fatal(tmp_path):
    anns = [fake_annotation(i) for i in range(5)]
    tasks = json.loads(export_tasks([item(a) for a in anns], tmp_path / "t.json",
                                    model_version="m").read_text())
    doc = submit(tasks)
    del doc[0]["data"]["sample_id"]                                    # task 0: no sample id
    doc[1]["annotations"][0]["result"][1].pop("value")                 # task 1: region without value
    doc[2]["annotations"][0]["completed_by"] = None                    # task 2: no annotator
    rect = next(r for r in doc[3]["annotations"][0]["result"] if r["type"] == "videorectangle")
    rect["value"]["sequence"][0]["frame"] = 2.5                        # task 3: fractional frame
    doc.append("not a task")                                           # task 5: not an object
    doc.append({"data": {"sample_id": "abc", "duration_s": 6.0, "fps": 24.0},
                "annotations": copy.deepcopy(doc[4]["annotations"])})  # task 6: bad sample id
    res = import_annotations(write(tmp_path, doc), prompt_version=PV, taxonomy_version=TV)
    assert [a.sample_id for a in res] == [anns[4].sample_id]
    where = {(p.task_index, p.field) for p in res.errors}
    assert (0, "data.sample_id") in where
    assert (1, "annotations[0].result[1].value") in where
    assert (2, "annotations[0].completed_by") in where
    assert (3, "annotations[0].result[1].value.sequence[0].frame") in where
    assert (5, "task") in where
    assert (6, "data.sample_id") in where
    assert all(str(p).startswith("error: task ") for p in res.errors)


def test_real_label_with_artifact_regions_is_rejected(tmp_path):
    ann = fake_annotation(0)
    tasks = json.loads(export_tasks([item(ann)], tmp_path / "t.json", model_version="m").read_text())

    def flip(a):
        for r in a["result"]:
            if r["type"] == "choices":
                r["value"]["choices"] = ["Real"]
    (imported,) = import_annotations(write(tmp_path, submit(tasks, edit=flip)),
                                     prompt_version=PV, taxonomy_version=TV)
    assert imported.label == "real" and imported.status == "rejected"
    assert "contradicts" in imported.rejection_reason


def test_unreadable_export_raises(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        import_annotations(p, prompt_version=PV, taxonomy_version=TV)


def test_human_text_with_grammar_violations_is_kept_and_flagged(tmp_path):
    ann = fake_annotation(0)
    tasks = json.loads(export_tasks([item(ann)], tmp_path / "t.json", model_version="m").read_text())
    text = "<think>The arm <type>Melting Arm</type> in <t>[1.2, 2.75]</t> bends.</think>"
    edit = lambda a: [r["value"].update(text=[text]) for r in a["result"] if r["type"] == "textarea"]  # noqa: E731
    res = import_annotations(write(tmp_path, submit(tasks, edit=edit)), prompt_version=PV,
                             taxonomy_version=TV)
    (imported,) = res
    assert imported.explanation == text
    assert {"unknown_type", "no_answer"} <= set(imported.violations)
    assert imported.status == "rejected" and "no_answer" in imported.rejection_reason
    _assert_same(imported, ann)  # the regions are still the human's


def test_label_studio_variants_are_read(tmp_path):
    """Track labels in a separate ``labels`` region with the track's id; integral float frames."""
    ann = fake_annotation(0)
    tasks = json.loads(export_tasks([item(ann)], tmp_path / "t.json", model_version="m").read_text())

    def variant(a):
        extra = []
        for r in a["result"]:
            if r["type"] == "videorectangle":
                extra.append({"id": r["id"], "from_name": ARTIFACT_TYPE, "to_name": VIDEO,
                              "type": "labels", "value": {"labels": r["value"].pop("labels")}})
            if r["type"] == "timelinelabels":
                r["value"]["ranges"] = [{k: float(v) for k, v in x.items()} for x in r["value"]["ranges"]]
        a["result"] += extra

    res = import_annotations(write(tmp_path, submit(tasks, edit=variant)), prompt_version=PV,
                             taxonomy_version=TV)
    assert res.problems == ()
    _assert_same(res[0], ann)
    assert res[0].status == "accepted"
