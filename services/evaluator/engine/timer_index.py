"""Which customers need a tick, cheaply: a heap of due times with lazy deletion.

A tick pops only the customers that are due, so it costs in proportion to the due
timers (O(k log n) for k due of n scheduled), never to the number of customers
(design principle 6). Rescheduling or cancelling leaves the old heap entry behind;
it is skipped when it surfaces, and the heap is rebuilt when stale entries
outnumber live ones, so memory stays proportional to the customers scheduled.
"""

from __future__ import annotations

import heapq


class TimerIndex:
    """Per-customer due times (epoch ms). Pure in-memory data structure."""

    def __init__(self) -> None:
        self._due: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._due)

    def get(self, customer_id: str) -> int | None:
        return self._due.get(customer_id)

    def set(self, customer_id: str, due: int | None) -> None:
        """Schedule ``customer_id`` at ``due``; ``None`` cancels its timer."""
        if due is None:
            self._due.pop(customer_id, None)
        elif self._due.get(customer_id) != due:
            self._due[customer_id] = due
            heapq.heappush(self._heap, (due, customer_id))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [(d, c) for c, d in self._due.items()]
            heapq.heapify(self._heap)

    def pop_due(self, at: int) -> list[str]:
        """Customers due at or before ``at``, in due order (ties by id); they are removed."""
        out: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= at:
            due, customer = heapq.heappop(heap)
            if self._due.get(customer) == due:
                del self._due[customer]
                out.append(customer)
        return out
