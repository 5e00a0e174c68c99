"""The pieces without the processes: image normalisation, the journal, folding, backoff."""

from __future__ import annotations

import io
import sqlite3
import time

import pytest
from growbin.core.app import load_domain
from growbin.core.processes import PROCESSES, api_process
from growbin.scans import images, outbox
from growbin.scans.models import ScanStatus
from growbin.worker.drain import fold
from growbin.worker.journal import Journal
from growbin.worker.tasks import retry_delay
from PIL import Image

ORIENTATION = 0x0112


def jpeg(size: tuple[int, int], orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_exif_orientation_is_applied_then_dropped():
    # Orientation 6: the camera was turned; the upright picture is 20 wide, 40 high.
    result = images.normalize(jpeg((40, 20), orientation=6), 10_000_000, 1600, 320)
    upright = Image.open(io.BytesIO(result.jpeg))
    assert upright.size == (20, 40)
    assert dict(upright.getexif()) == {}


def test_large_photos_are_scaled_down_and_transparency_flattened():
    out = io.BytesIO()
    Image.new("RGBA", (3000, 1000), (0, 0, 0, 0)).save(out, "PNG")
    result = images.normalize(out.getvalue(), 10_000_000, 1600, 320)
    assert (result.width, result.height) == (1600, 533)
    image = Image.open(io.BytesIO(result.jpeg))
    assert image.mode == "RGB" and image.getpixel((10, 10)) == (255, 255, 255)
    assert max(Image.open(io.BytesIO(result.thumbnail)).size) == 320


def test_pixel_limit_is_checked_from_the_header():
    with pytest.raises(images.ImageRejected) as rejected:
        images.inspect(jpeg((200, 100)), max_pixels=10_000)
    assert rejected.value.code == "image_too_large" and "megapixels" in rejected.value.message


def test_journal_is_a_durable_wal_mode_queue(tmp_path):
    journal = Journal(tmp_path / "wal.sqlite3")
    first = journal.append("s1", "u1", ScanStatus.PROCESSING, {})
    journal.append("s1", "u1", ScanStatus.STORED, {"image_key": "k"})
    assert journal.depth() == 2
    time.sleep(0.05)
    assert journal.oldest_age_seconds() > 0
    assert [e.status for e in journal.pending()] == ["processing", "stored"]
    journal.remove_through(first)
    assert [e.fields for e in journal.pending()] == [{"image_key": "k"}]
    with sqlite3.connect(tmp_path / "wal.sqlite3") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Another process (or a restart) sees what is pending.
    assert Journal(tmp_path / "wal.sqlite3").depth() == 1
    journal.remove_through(10**9)
    assert journal.depth() == 0 and journal.oldest_age_seconds() == 0


def test_fold_keeps_the_furthest_state_and_the_first_result(tmp_path):
    journal = Journal(tmp_path / "wal.sqlite3")
    a, b = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
    journal.append(a, "u", ScanStatus.STORED, {"image_key": "img"})
    journal.append(b, "u", ScanStatus.PROCESSING, {})
    journal.append(a, "u", ScanStatus.COMPLETED, {"category": "glass"})
    # A duplicate delivery finishing second must not replace the first result.
    journal.append(a, "u", ScanStatus.FAILED, {"failure_reason": "late duplicate"})
    folded = {str(u.scan_id): u for u in fold(journal.pending())}
    assert folded[a].status is ScanStatus.COMPLETED
    assert folded[a].fields == {"image_key": "img", "category": "glass"}
    assert folded[b].status is ScanStatus.PROCESSING


def test_retry_delays_grow_with_jitter_and_a_cap():
    for retries in range(10):
        ceiling = min(60.0, 2.0 * 2**retries)
        delays = [retry_delay(retries, 2.0, 60.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_the_outbox_relay_runs_wherever_the_scans_api_runs():
    # Both runtimes start `growbin api scans` from the deploy contract; the relay starts with
    # the scans domain, so it needs the broker and the scans database that process gets.
    assert outbox.start_relay in load_domain("scans").background
    process = api_process("scans")
    assert process.broker and "scans" in process.databases
    others = [p.name for p in PROCESSES.values() if p.kind == "api" and p.name != "api-scans"]
    assert all(
        outbox.start_relay not in load_domain(n.removeprefix("api-")).background for n in others
    )
