"""A pure-Python archive index: the oracle the SQL engine is compared with.

Written from the rules in docs/archive.md, not from the SQL: the records applied in
order, the latest record naming a patient, study or series giving its attributes
(and its parent), an entity shown while an instance under it is held.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiodimse.store.records import (
    IMAGE,
    PATIENT,
    SERIES,
    STUDY,
    Condition,
    IndexQuery,
    InstanceRecord,
    Term,
)

_PATIENT_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
_STUDY_KEYS = ("StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyInstanceUID",
               "ReferringPhysicianName", "StudyDescription")
_SERIES_KEYS = ("Modality", "SeriesNumber", "SeriesInstanceUID", "SeriesDescription")


def ascii_lower(text: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def term_matches(term: Term, value: str, fold: bool) -> bool:
    if term.kind == "exact":
        return ascii_lower(value) == ascii_lower(term.a) if fold else value == term.a
    if term.kind == "pattern":
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                        for c in term.a)
        flags = re.DOTALL | (re.IGNORECASE | re.ASCII if fold else 0)
        return re.fullmatch(regex, value, flags) is not None
    return value != "" and (not term.a or value >= term.a) and (not term.b or value <= term.b)


@dataclass
class Reference:
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    patients: dict[str, dict[str, str]] = field(default_factory=dict)
    studies: dict[str, dict[str, str]] = field(default_factory=dict)  # + "_patient"
    series: dict[str, dict[str, str]] = field(default_factory=dict)  # + "_study"

    def add(self, records: Iterable[InstanceRecord]) -> None:
        for rec in records:
            self.instances[rec.sop_instance_uid] = rec
            a = rec.attrs
            study, series = a.get("StudyInstanceUID", ""), a.get("SeriesInstanceUID", "")
            if not study or not series:
                continue
            pid = a.get("PatientID", "")
            self.patients[pid] = {k: a.get(k, "") for k in _PATIENT_KEYS}
            self.studies[study] = {k: a.get(k, "") for k in _STUDY_KEYS} | {"_patient": pid}
            self.series[series] = {k: a.get(k, "") for k in _SERIES_KEYS} | {"_study": study}

    def _held(self) -> list[InstanceRecord]:
        return [r for r in self.instances.values()
                if r.attrs.get("StudyInstanceUID") and r.attrs.get("SeriesInstanceUID")]

    def rows(self, level: str) -> list[dict[str, object]]:
        """Each entity of ``level`` held, with every key (multi-valued ones as lists;
        "_modalities": every series' modality, empty ones too, for matching)."""
        held = self._held()
        series_of = {r.sop_instance_uid: r.attrs["SeriesInstanceUID"] for r in held}
        live_series = set(series_of.values())
        live_studies = {self.series[s]["_study"] for s in live_series}
        live_patients = {self.studies[s]["_patient"] for s in live_studies}

        def inst_in_series(s: str) -> list[InstanceRecord]:
            return [r for r in held if series_of[r.sop_instance_uid] == s]

        def series_in_study(st: str) -> list[str]:
            return [s for s in live_series if self.series[s]["_study"] == st]

        def studies_of(p: str) -> list[str]:
            return [st for st in live_studies if self.studies[st]["_patient"] == p]

        def patient_row(p: str) -> dict[str, object]:
            sts = studies_of(p)
            sers = [s for st in sts for s in series_in_study(st)]
            return dict(self.patients[p]) | {
                "NumberOfPatientRelatedStudies": str(len(sts)),
                "NumberOfPatientRelatedSeries": str(len(sers)),
                "NumberOfPatientRelatedInstances": str(sum(len(inst_in_series(s))
                                                           for s in sers))}

        def study_row(st: str) -> dict[str, object]:
            attrs = self.studies[st]
            sers = series_in_study(st)
            insts = [r for s in sers for r in inst_in_series(s)]
            mods = [self.series[s]["Modality"] for s in sers]
            return patient_row(attrs["_patient"]) | {
                k: v for k, v in attrs.items() if not k.startswith("_")} | {
                "ModalitiesInStudy": sorted({m for m in mods if m}),
                "_modalities": mods,
                "SOPClassesInStudy": sorted({r.sop_class_uid for r in insts}),
                "NumberOfStudyRelatedSeries": str(len(sers)),
                "NumberOfStudyRelatedInstances": str(len(insts))}

        def series_row(s: str) -> dict[str, object]:
            attrs = self.series[s]
            return study_row(attrs["_study"]) | {
                k: v for k, v in attrs.items() if not k.startswith("_")} | {
                "NumberOfSeriesRelatedInstances": str(len(inst_in_series(s)))}

        if level == PATIENT:
            return [patient_row(p) for p in live_patients]
        if level == STUDY:
            return [study_row(st) for st in live_studies]
        if level == SERIES:
            return [series_row(s) for s in live_series]
        assert level == IMAGE
        return [series_row(series_of[r.sop_instance_uid]) | {
            "SOPInstanceUID": r.sop_instance_uid, "SOPClassUID": r.sop_class_uid,
            "InstanceNumber": r.attrs.get("InstanceNumber", ""),
            "AvailableTransferSyntaxUID": r.transfer_syntax, "_path": r.path} for r in held]

    def match(self, query: IndexQuery) -> list[dict[str, object]]:
        return [row for row in self.rows(query.level)
                if all(_meets(row, c) for c in query.conditions)]


def _meets(row: dict[str, object], cond: Condition) -> bool:
    if cond.keyword == "ModalitiesInStudy":
        values: Sequence[object] = row["_modalities"]  # type: ignore[assignment]
    elif cond.keyword == "SOPClassesInStudy":
        values = row["SOPClassesInStudy"]  # type: ignore[assignment]
    else:
        values = [row[cond.keyword]]
    return any(term_matches(t, str(v), cond.fold) for t in cond.terms for v in values)


def shown(row: dict[str, object], keys: Sequence[str]) -> tuple[str, ...]:
    """A reference row's values of ``keys`` as the index gives them."""
    return tuple("\\".join(v) if isinstance(v, list) else str(v)
                 for v in (row[k] for k in keys))
