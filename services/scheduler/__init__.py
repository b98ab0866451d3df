"""The scheduler: emits ticks that carry the time, one per partition of the ticks topic."""
