"""Random rounds of changes for the tests of what the daemon keeps from the tasks it changes
(daemon/inbatch.InBatch, intents.Asked): their deciding/changed protocol, as engine._survey uses it."""

import random


def rounds(seed: int, keeper, task, change):
    """Up to 40 tasks made by ``task``, ``kept = keeper(tasks)``, then up to 12 rounds: some tasks
    handed to ``kept.deciding`` (a few twice), changed by ``change``, new ones appended,
    ``kept.changed``; yields (tasks, kept) after each round."""
    rng = random.Random(seed)
    tasks = [task(rng, r) for r in range(rng.randint(0, 40))]
    kept = keeper(tasks)
    for _ in range(rng.randint(1, 12)):
        deciding = rng.sample(tasks, rng.randint(0, len(tasks))) if tasks else []
        kept.deciding(deciding + deciding[:2])
        for t in deciding:
            change(rng, t)
        added = [task(rng, 1000 + len(tasks) + i) for i in range(rng.randint(0, 3))]
        tasks += added
        kept.changed(added)
        yield tasks, kept
