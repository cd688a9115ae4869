"""tracker: exact Responses-API deltas for agent loops.

The core is sans-IO: it takes items and responses in and hands decisions out. Integrations
are subpackages imported by path (``tracker.agents``, ``tracker.loop``, ``tracker.stores``,
``tracker.emulator``); importing ``tracker`` imports none of them.
"""

from ._errors import (
    CompactedCallError,
    CompactionError,
    ConflictError,
    ContinuationError,
    CorruptStateError,
    EditedHistoryError,
    HistoryError,
    ItemError,
    SessionBusyError,
    StateError,
    StateVersionError,
    StoreError,
    TrackerError,
    TranscriptError,
    UsageError,
)
from ._fingerprint import fingerprint
from ._items import ItemInfo, read_item
from ._prepared import Prepared
from ._repair import repair_history, strip_encrypted
from ._repair_actions import RepairAction
from ._rules import Violation, validate_history
from ._snapshot import STATE_VERSION
from ._tracker import Tracker

__version__ = "0.1.0"

__all__ = [
    "STATE_VERSION",
    "CompactedCallError",
    "CompactionError",
    "ConflictError",
    "ContinuationError",
    "CorruptStateError",
    "EditedHistoryError",
    "HistoryError",
    "ItemError",
    "ItemInfo",
    "Prepared",
    "RepairAction",
    "SessionBusyError",
    "StateError",
    "StateVersionError",
    "StoreError",
    "Tracker",
    "TrackerError",
    "TranscriptError",
    "UsageError",
    "Violation",
    "fingerprint",
    "read_item",
    "repair_history",
    "strip_encrypted",
    "validate_history",
]
