"""The CPU cores this process may use (its affinity where the OS has one): the one count every thread pool sizes by
(the engine's tiles, the PNG writer's strips, a video's frames)."""

import os


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
