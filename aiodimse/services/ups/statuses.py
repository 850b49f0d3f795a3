"""Every status the UPS service answers with, in one table (PS3.4 CC.2.x, PS3.7 C).

docs/ups.md prints the same table; ``tests/services/test_ups_statuses.py`` holds
the two to each other.
"""

from __future__ import annotations

__all__ = ["SUCCESS", "CREATED_WITH_MODIFICATIONS",
           "ALREADY_CANCELED", "ALREADY_COMPLETED", "MAY_NO_LONGER_BE_UPDATED",
           "WRONG_TRANSACTION_UID", "ALREADY_IN_PROGRESS", "ONLY_SCHEDULED_BY_CREATE",
           "FINAL_STATE_NOT_MET", "NO_SUCH_WORKITEM", "STATE_NOT_SCHEDULED",
           "NOT_IN_PROGRESS", "CANCEL_ALREADY_COMPLETED", "NO_SUCH_ACTION",
           "INVALID_ATTRIBUTE_VALUE", "PROCESSING_FAILURE", "DUPLICATE_INSTANCE",
           "MISSING_ATTRIBUTE", "MISSING_ATTRIBUTE_VALUE", "RESOURCE_LIMITATION",
           "UNKNOWN_RECEIVING_AE", "ACTION_NOT_APPROPRIATE", "INVALID_ARGUMENT",
           "FIND_PENDING", "FIND_PENDING_WARNING", "FIND_OUT_OF_RESOURCES", "FIND_NOT_MATCHING",
           "TABLE"]

SUCCESS = 0x0000
CREATED_WITH_MODIFICATIONS = 0xB300
ALREADY_CANCELED = 0xB304
ALREADY_COMPLETED = 0xB306
MAY_NO_LONGER_BE_UPDATED = 0xC300
WRONG_TRANSACTION_UID = 0xC301
ALREADY_IN_PROGRESS = 0xC302
ONLY_SCHEDULED_BY_CREATE = 0xC303
FINAL_STATE_NOT_MET = 0xC304
NO_SUCH_WORKITEM = 0xC307
UNKNOWN_RECEIVING_AE = 0xC308
STATE_NOT_SCHEDULED = 0xC309
NOT_IN_PROGRESS = 0xC310
CANCEL_ALREADY_COMPLETED = 0xC311
ACTION_NOT_APPROPRIATE = 0xC314
NO_SUCH_ACTION = 0x0123
INVALID_ATTRIBUTE_VALUE = 0x0106
INVALID_ARGUMENT = 0x0115
PROCESSING_FAILURE = 0x0110
DUPLICATE_INSTANCE = 0x0111
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
RESOURCE_LIMITATION = 0x0213
FIND_PENDING = 0xFF00
FIND_PENDING_WARNING = 0xFF01
FIND_OUT_OF_RESOURCES = 0xA700
FIND_NOT_MATCHING = 0xA900

TABLE: tuple[tuple[int, str, str], ...] = (
    (SUCCESS, "all", "performed as asked"),
    (CREATED_WITH_MODIFICATIONS, "N-CREATE",
     "warning: created with modifications (an empty Worklist Label or Procedure Step "
     "Label filled in)"),
    (ALREADY_CANCELED, "N-ACTION 1, 2", "warning: the workitem is CANCELED already"),
    (ALREADY_COMPLETED, "N-ACTION 1", "warning: the workitem is COMPLETED already"),
    (MAY_NO_LONGER_BE_UPDATED, "N-SET, N-ACTION 1",
     "the workitem is COMPLETED or CANCELED: no more changes"),
    (WRONG_TRANSACTION_UID, "N-SET, N-ACTION 1",
     "an IN PROGRESS workitem and no or the wrong Transaction UID"),
    (ALREADY_IN_PROGRESS, "N-ACTION 1", "claim of a workitem that is IN PROGRESS already"),
    (ONLY_SCHEDULED_BY_CREATE, "N-ACTION 1", "a change to SCHEDULED (only N-CREATE makes one)"),
    (FINAL_STATE_NOT_MET, "N-ACTION 1",
     "COMPLETED or CANCELED asked before the final-state attributes of Table "
     "CC.2.5-3 are there (the first one missing named)"),
    (NO_SUCH_WORKITEM, "N-GET, N-SET, N-ACTION", "no workitem with that SOP Instance UID"),
    (UNKNOWN_RECEIVING_AE, "N-ACTION 3",
     "the Receiving AE is not in the AE table (its reports could go nowhere)"),
    (STATE_NOT_SCHEDULED, "N-CREATE", "Procedure Step State other than SCHEDULED"),
    (NOT_IN_PROGRESS, "N-SET, N-ACTION 1",
     "a SCHEDULED workitem given a Transaction UID (N-SET), or asked to become "
     "COMPLETED or CANCELED before IN PROGRESS"),
    (CANCEL_ALREADY_COMPLETED, "N-ACTION 2", "cancel request on a COMPLETED workitem"),
    (ACTION_NOT_APPROPRIATE, "N-ACTION 5",
     "Suspend Global Subscription on a workitem, not on a global subscription instance"),
    (NO_SUCH_ACTION, "N-ACTION", "an Action Type ID this SOP class does not have"),
    (INVALID_ATTRIBUTE_VALUE, "N-CREATE, N-SET, N-ACTION",
     "a value that is not valid (bad Transaction UID, unknown requested state, a value "
     "pydicom warns about, Procedure Step State in an N-SET)"),
    (INVALID_ARGUMENT, "N-ACTION",
     "Action Information missing an attribute it needs (1: Procedure Step State; 3, 4, "
     "5: Receiving AE; 3: Deletion Lock), or a Deletion Lock other than TRUE or FALSE "
     "(PS3.7 gives N-ACTION no Missing Attribute status)"),
    (PROCESSING_FAILURE, "all", "the store failed (not full nor unreachable); an empty "
     "N-SET"),
    (DUPLICATE_INSTANCE, "N-CREATE", "a workitem with that SOP Instance UID exists"),
    (MISSING_ATTRIBUTE, "N-CREATE",
     "a Type 1 or 2 attribute missing, or no data set at all"),
    (MISSING_ATTRIBUTE_VALUE, "N-CREATE", "a Type 1 attribute present but empty"),
    (RESOURCE_LIMITATION, "N-services",
     "the store is full or unreachable; N-CREATE, N-SET: a workitem (or the request's "
     "data set as received) over [quotas] ups_max_workitem bytes"),
    (FIND_PENDING, "C-FIND", "a match (one per workitem)"),
    (FIND_PENDING_WARNING, "C-FIND",
     "a match, the identifier holding a key not supported (Transaction UID: cannot be "
     "queried; a private attribute): neither matched nor returned"),
    (FIND_NOT_MATCHING, "C-FIND", "the identifier is not one the workitems can match"),
    (FIND_OUT_OF_RESOURCES, "C-FIND", "the store is full or unreachable"),
)
"""(status, operations, meaning) of each status, for docs/ups.md."""
