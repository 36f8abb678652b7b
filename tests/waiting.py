"""Waiting on something another process or thread does: poll its condition, never a fixed sleep."""
import time


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05) -> bool:
    """True as soon as predicate() holds; False if it still does not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
