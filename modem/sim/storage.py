"""Message storage: the SIM's ("SM") and the modem's own ("ME"), as AT+CPMS names them."""
from __future__ import annotations

from dataclasses import dataclass

# <stat> of TS 27.005 3.1, as numbers (PDU mode) and words (text mode).
REC_UNREAD, REC_READ, STO_UNSENT, STO_SENT, ALL = range(5)
STAT_WORDS = ("REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL")

# delflag of AT+CMGD: which stats each flag deletes besides the given index.
DELFLAG_STATS = {1: {REC_READ}, 2: {REC_READ, STO_SENT},
                 3: {REC_READ, STO_SENT, STO_UNSENT},
                 4: {REC_UNREAD, REC_READ, STO_SENT, STO_UNSENT}}


@dataclass
class StoredMessage:
    stat: int
    pdu: str            # hex, SMSC field included, as AT+CMGR shows it
    kind: str           # 'deliver' or 'report'


class MessageStore:
    """Slots indexed from 0, as a Quectel numbers them; the lowest free slot is used first."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self._slots: dict[int, StoredMessage] = {}

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def full(self) -> bool:
        return len(self._slots) >= self.capacity

    def valid(self, index: int) -> bool:
        return 0 <= index < self.capacity

    def add(self, message: StoredMessage) -> int | None:
        """The index it was stored at, or None when the store is full."""
        for index in range(self.capacity):
            if index not in self._slots:
                self._slots[index] = message
                return index
        return None

    def get(self, index: int) -> StoredMessage | None:
        return self._slots.get(index)

    def delete(self, index: int, delflag: int = 0) -> None:
        self._slots.pop(index, None)
        stats = DELFLAG_STATS.get(delflag, set())
        for i in [i for i, m in self._slots.items() if m.stat in stats]:
            del self._slots[i]

    def listing(self, stat: int) -> list[tuple[int, StoredMessage]]:
        return sorted(((i, m) for i, m in self._slots.items() if stat == ALL or m.stat == stat),
                      key=lambda pair: pair[0])

    def indexes(self) -> list[int]:
        return sorted(self._slots)
