"""What attaching a phone's photos to an order costs (附件上传, ``cityhub.workorders.files``).

Through the HTTP API of the real app (FastAPI's TestClient, in process) on a fresh SQLite database and file store:
``--uploads`` uploads of one photo each (a ``--width``×``--height`` JPEG at quality 90 of shading and noise, some
4 MB at 4000×3000 as a phone's camera writes; each one different, so none is kept only once; made one at a time,
so the peak memory is the server's), then the first
request of each photo's thumbnail (made then: decode, orient, scale, write), a second one (read from the
thumbnails kept), and the file itself. Reports p50/p95/p99 per request, megabytes per second of upload and
download, and the peak memory of the process.

    .venv/bin/python bench/bench_files.py [--quick] [--uploads 50] [--width 4000 --height 3000]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageChops

sys.path.insert(0, str(Path(__file__).parent))
from _common import fresh_sqlite_url, peak_rss_mb, percentiles, use_database, write_result


def photo(index: int, width: int, height: int) -> bytes:
    """A street scene's statistics, roughly: smooth shading with sensor-like noise (a phone's 12-megapixel photo
    at quality 90 is a few MB; pure noise would be 11). Made by Pillow in C, a few bytes per pixel: the bench's
    own memory stays out of the peak it reports."""
    shade = Image.linear_gradient("L").resize((width, height))
    bands = [
        ImageChops.add(shade, Image.effect_noise((width, height), 9), offset=-128 + 25 * band + index % 50)
        for band in range(3)
    ]
    out = io.BytesIO()
    Image.merge("RGB", bands).save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 uploads of 1600×1200")
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    args = parser.parse_args()
    if args.quick:
        args.uploads, args.width, args.height = 5, 1600, 1200

    os.environ["CITYHUB_FILES_DIR"] = tempfile.mkdtemp(prefix="cityhub-bench-files-")
    os.environ["CITYHUB_DISPATCH_IN_BACKGROUND"] = "false"
    use_database(fresh_sqlite_url("files"))
    from fastapi.testclient import TestClient

    from cityhub.auth.service import create_token
    from cityhub.db import session_scope
    from cityhub.intake.service import submit
    from cityhub.main import create_app
    from cityhub.org.models import Role, Unit, UnitTier, User

    with session_scope() as s:
        district = Unit(code="B-QU", name="白云区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        user = User(username="bench-op", full_name="话务员", role=Role.OPERATOR, unit_id=district.id)
        s.add(user)
        s.flush()
        headers = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='bench')[1]}"}
        order_id = submit(s, data={"channel": "hotline", "content": "井盖破损，见照片"}).order.id

    client = TestClient(create_app())
    upload_ms, urls = [], []
    size_mb = 0.0
    for i in range(args.uploads):
        data = photo(i, args.width, args.height)
        size_mb += len(data) / 1e6
        start = time.perf_counter()
        answer = client.post(
            f"/api/v1/orders/{order_id}/attachments",
            files=[("files", (f"photo{i}.jpg", data, "image/jpeg"))],
            headers=headers,
        )
        upload_ms.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 201, answer.text
        urls.append(answer.json()[0]["url"])

    def timed(url: str, **params: str) -> float:
        start = time.perf_counter()
        got = client.get(url, params=params, headers=headers)
        assert got.status_code == 200, got.text
        return (time.perf_counter() - start) * 1000

    first_thumb = [timed(u, thumb="true") for u in urls]
    kept_thumb = [timed(u, thumb="true") for u in urls]
    download = [timed(u) for u in urls]
    result = {
        "uploads": args.uploads,
        "photo": f"{args.width}x{args.height} JPEG q90",
        "mean_photo_mb": round(size_mb / args.uploads, 2),
        "upload_ms": percentiles(upload_ms),
        "upload_mb_per_s": round(size_mb / (sum(upload_ms) / 1000), 1),
        "thumbnail_first_ms": percentiles(first_thumb),
        "thumbnail_kept_ms": percentiles(kept_thumb),
        "download_ms": percentiles(download),
        "download_mb_per_s": round(size_mb / (sum(download) / 1000), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    path = write_result("files" if not args.quick else "files_quick", result)
    for key, value in result.items():
        print(f"{key}: {value}")
    print(f"→ {path}")


if __name__ == "__main__":
    main()
