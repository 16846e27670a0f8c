import threading
import time

from cairn.snapshots import LiveManifest
from cairn.vault import Manifest, RowSet


def _manifest() -> Manifest:
    return Manifest(collection="c", embed_model="m", dim=2)


def test_readers_keep_the_snapshot_they_took() -> None:
    """A publish does not change a snapshot a reader already holds."""
    live = LiveManifest(_manifest())
    with live.snapshot() as before:
        draft = live.draft()
        draft.pending.append(RowSet(doc_id="ab", version=1))
        live.publish(draft)
        assert before.pending == []
    with live.snapshot() as after:
        assert after.pending == [RowSet(doc_id="ab", version=1)]


def test_wait_for_readers_blocks_until_older_snapshots_are_released() -> None:
    """The writer waits for a reader of an older epoch, and not for readers of the new one."""
    live = LiveManifest(_manifest())
    released = threading.Event()
    entered = threading.Event()

    def reader() -> None:
        with live.snapshot():
            entered.set()
            time.sleep(0.3)
            released.set()

    thread = threading.Thread(target=reader)
    thread.start()
    entered.wait()
    epoch = live.publish(live.draft())
    with live.snapshot():  # a reader of the new epoch must not block the writer
        assert live.wait_for_readers(epoch, timeout=5)
    assert released.is_set()
    thread.join()


def test_wait_for_readers_times_out() -> None:
    """A reader that never finishes makes the wait return False after the timeout."""
    live = LiveManifest(_manifest())
    with live.snapshot():
        epoch = live.publish(live.draft())
        assert live.wait_for_readers(epoch, timeout=0.1) is False
