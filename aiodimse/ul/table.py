"""PS3.8 Table 9-10, the upper-layer state transition table, written out as data.

One line per non-empty cell, grouped by event (the table's rows), states in column order,
so that the file can be checked cell by cell against the standard
(https://dicom.nema.org/medical/dicom/current/output/chtml/part08/sect_9.2.3.html).
tests/ul/test_table.py also diffs it against pynetdicom's table (which the project's
facts digest found identical to DCMTK's ``dulfsm.cc``).

A (state, event) pair missing here is a usage error when the event is a local primitive
(``LocalProtocolError``). For received PDUs every state with a transport connection
(Sta2, Sta3, Sta5-Sta13) has a cell; Sta1 and Sta4 have no connection to receive on.

The table does not cover our own timeouts while waiting for A-ASSOCIATE-AC/RJ (Sta5) or
A-RELEASE-RP (Sta7 and the collision states); ``machine.UpperLayer`` handles those
outside the table (send A-ABORT, close), as DCMTK does with an AA-2 of its own.
"""

from __future__ import annotations

from .states import Action as A
from .states import Event as E
from .states import State as S

__all__ = ["TRANSITIONS"]

TRANSITIONS: dict[tuple[S, E], A] = {
    # Evt1: A-ASSOCIATE request (local user)
    (S.STA1, E.EVT1): A.AE_1,
    # Evt2: Transport connect confirmation (local transport)
    (S.STA4, E.EVT2): A.AE_2,
    # Evt3: A-ASSOCIATE-AC PDU received
    (S.STA2, E.EVT3): A.AA_1,
    (S.STA3, E.EVT3): A.AA_8,
    (S.STA5, E.EVT3): A.AE_3,
    (S.STA6, E.EVT3): A.AA_8,
    (S.STA7, E.EVT3): A.AA_8,
    (S.STA8, E.EVT3): A.AA_8,
    (S.STA9, E.EVT3): A.AA_8,
    (S.STA10, E.EVT3): A.AA_8,
    (S.STA11, E.EVT3): A.AA_8,
    (S.STA12, E.EVT3): A.AA_8,
    (S.STA13, E.EVT3): A.AA_6,
    # Evt4: A-ASSOCIATE-RJ PDU received
    (S.STA2, E.EVT4): A.AA_1,
    (S.STA3, E.EVT4): A.AA_8,
    (S.STA5, E.EVT4): A.AE_4,
    (S.STA6, E.EVT4): A.AA_8,
    (S.STA7, E.EVT4): A.AA_8,
    (S.STA8, E.EVT4): A.AA_8,
    (S.STA9, E.EVT4): A.AA_8,
    (S.STA10, E.EVT4): A.AA_8,
    (S.STA11, E.EVT4): A.AA_8,
    (S.STA12, E.EVT4): A.AA_8,
    (S.STA13, E.EVT4): A.AA_6,
    # Evt5: Transport connection indication (local transport)
    (S.STA1, E.EVT5): A.AE_5,
    # Evt6: A-ASSOCIATE-RQ PDU received
    (S.STA2, E.EVT6): A.AE_6,
    (S.STA3, E.EVT6): A.AA_8,
    (S.STA5, E.EVT6): A.AA_8,
    (S.STA6, E.EVT6): A.AA_8,
    (S.STA7, E.EVT6): A.AA_8,
    (S.STA8, E.EVT6): A.AA_8,
    (S.STA9, E.EVT6): A.AA_8,
    (S.STA10, E.EVT6): A.AA_8,
    (S.STA11, E.EVT6): A.AA_8,
    (S.STA12, E.EVT6): A.AA_8,
    (S.STA13, E.EVT6): A.AA_7,
    # Evt7: A-ASSOCIATE response primitive (accept)
    (S.STA3, E.EVT7): A.AE_7,
    # Evt8: A-ASSOCIATE response primitive (reject)
    (S.STA3, E.EVT8): A.AE_8,
    # Evt9: P-DATA request primitive
    (S.STA6, E.EVT9): A.DT_1,
    (S.STA8, E.EVT9): A.AR_7,
    # Evt10: P-DATA-TF PDU received
    (S.STA2, E.EVT10): A.AA_1,
    (S.STA3, E.EVT10): A.AA_8,
    (S.STA5, E.EVT10): A.AA_8,
    (S.STA6, E.EVT10): A.DT_2,
    (S.STA7, E.EVT10): A.AR_6,
    (S.STA8, E.EVT10): A.AA_8,
    (S.STA9, E.EVT10): A.AA_8,
    (S.STA10, E.EVT10): A.AA_8,
    (S.STA11, E.EVT10): A.AA_8,
    (S.STA12, E.EVT10): A.AA_8,
    (S.STA13, E.EVT10): A.AA_6,
    # Evt11: A-RELEASE request primitive
    (S.STA6, E.EVT11): A.AR_1,
    # Evt12: A-RELEASE-RQ PDU received
    (S.STA2, E.EVT12): A.AA_1,
    (S.STA3, E.EVT12): A.AA_8,
    (S.STA5, E.EVT12): A.AA_8,
    (S.STA6, E.EVT12): A.AR_2,
    (S.STA7, E.EVT12): A.AR_8,
    (S.STA8, E.EVT12): A.AA_8,
    (S.STA9, E.EVT12): A.AA_8,
    (S.STA10, E.EVT12): A.AA_8,
    (S.STA11, E.EVT12): A.AA_8,
    (S.STA12, E.EVT12): A.AA_8,
    (S.STA13, E.EVT12): A.AA_6,
    # Evt13: A-RELEASE-RP PDU received
    (S.STA2, E.EVT13): A.AA_1,
    (S.STA3, E.EVT13): A.AA_8,
    (S.STA5, E.EVT13): A.AA_8,
    (S.STA6, E.EVT13): A.AA_8,
    (S.STA7, E.EVT13): A.AR_3,
    (S.STA8, E.EVT13): A.AA_8,
    (S.STA9, E.EVT13): A.AA_8,
    (S.STA10, E.EVT13): A.AR_10,
    (S.STA11, E.EVT13): A.AR_3,
    (S.STA12, E.EVT13): A.AA_8,
    (S.STA13, E.EVT13): A.AA_6,
    # Evt14: A-RELEASE response primitive
    (S.STA8, E.EVT14): A.AR_4,
    (S.STA9, E.EVT14): A.AR_9,
    (S.STA12, E.EVT14): A.AR_4,
    # Evt15: A-ABORT request primitive
    (S.STA3, E.EVT15): A.AA_1,
    (S.STA4, E.EVT15): A.AA_2,
    (S.STA5, E.EVT15): A.AA_1,
    (S.STA6, E.EVT15): A.AA_1,
    (S.STA7, E.EVT15): A.AA_1,
    (S.STA8, E.EVT15): A.AA_1,
    (S.STA9, E.EVT15): A.AA_1,
    (S.STA10, E.EVT15): A.AA_1,
    (S.STA11, E.EVT15): A.AA_1,
    (S.STA12, E.EVT15): A.AA_1,
    # Evt16: A-ABORT PDU received
    (S.STA2, E.EVT16): A.AA_2,
    (S.STA3, E.EVT16): A.AA_3,
    (S.STA5, E.EVT16): A.AA_3,
    (S.STA6, E.EVT16): A.AA_3,
    (S.STA7, E.EVT16): A.AA_3,
    (S.STA8, E.EVT16): A.AA_3,
    (S.STA9, E.EVT16): A.AA_3,
    (S.STA10, E.EVT16): A.AA_3,
    (S.STA11, E.EVT16): A.AA_3,
    (S.STA12, E.EVT16): A.AA_3,
    (S.STA13, E.EVT16): A.AA_2,
    # Evt17: Transport connection closed indication
    (S.STA2, E.EVT17): A.AA_5,
    (S.STA3, E.EVT17): A.AA_4,
    (S.STA4, E.EVT17): A.AA_4,
    (S.STA5, E.EVT17): A.AA_4,
    (S.STA6, E.EVT17): A.AA_4,
    (S.STA7, E.EVT17): A.AA_4,
    (S.STA8, E.EVT17): A.AA_4,
    (S.STA9, E.EVT17): A.AA_4,
    (S.STA10, E.EVT17): A.AA_4,
    (S.STA11, E.EVT17): A.AA_4,
    (S.STA12, E.EVT17): A.AA_4,
    (S.STA13, E.EVT17): A.AR_5,
    # Evt18: ARTIM timer expired
    (S.STA2, E.EVT18): A.AA_2,
    (S.STA13, E.EVT18): A.AA_2,
    # Evt19: Unrecognized or invalid PDU received
    (S.STA2, E.EVT19): A.AA_1,
    (S.STA3, E.EVT19): A.AA_8,
    (S.STA5, E.EVT19): A.AA_8,
    (S.STA6, E.EVT19): A.AA_8,
    (S.STA7, E.EVT19): A.AA_8,
    (S.STA8, E.EVT19): A.AA_8,
    (S.STA9, E.EVT19): A.AA_8,
    (S.STA10, E.EVT19): A.AA_8,
    (S.STA11, E.EVT19): A.AA_8,
    (S.STA12, E.EVT19): A.AA_8,
    (S.STA13, E.EVT19): A.AA_7,
}
