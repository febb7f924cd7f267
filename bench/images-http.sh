#!/usr/bin/env bash
# Images through the HTTP path: N uploads of the sample photos from C clients at once
# (presign, PUT, complete), the worker pool turning them into variants, until every image
# is completed. Prints images/s end to end and the server's CPU-seconds per image.
#
#   bench/images-http.sh [N] [C]     (defaults: 40 images, 4 clients; SQLite and a folder)
#
# MATSURI_SAMPLE_IMAGES names the photo folder (default ../shared/data/images).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

count=${1:-40}
clients=${2:-4}
photos=${MATSURI_SAMPLE_IMAGES:-../shared/data/images}
port=18480
fresh_database sqlite
MATSURI_MEDIA__UPLOADS_PER_MINUTE=100000 start_server "$port"
ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$server/stat"; }
before=$(cpu)

python3 - "$port" "$count" "$clients" "$photos" <<'PY'
import glob, json, sys, threading, time, urllib.request

port, count, clients, folder = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
base = f"http://127.0.0.1:{port}"
photos = [open(p, "rb").read() for p in sorted(glob.glob(f"{folder}/*.jpg"))]
if not photos:
    sys.exit(f"no photos in {folder}")

def call(method, path, token=None, body=None, raw=None, headers=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(path if path.startswith("http") else base + path, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as res:
        text = res.read()
        return json.loads(text) if text else None

user = call("POST", "/api/v1/auth/register", body={"email": "images@bench.localhost", "password": "bench-password-1", "name": "Bench"})
token = user["token"]
images, lock = [], threading.Lock()

def client(k):
    for i in range(k, count, clients):
        photo = photos[i % len(photos)]
        t = call("POST", "/api/v1/uploads/presigned-url", token, {"filename": f"p{i}.jpg", "content_type": "image/jpeg", "size": len(photo)})
        url = t["url"] if t["url"].startswith("http") else base + t["url"]
        call("PUT", url, raw=photo, headers=t["headers"])
        done = call("POST", f"/api/v1/uploads/{t['upload_id']}/complete", token, {})
        with lock:
            images.append(done["image_id"])

start = time.monotonic()
threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
uploaded = time.monotonic() - start
pending = set(images)
failed = 0
while pending:
    for i in list(pending):
        status = call("GET", f"/api/v1/images/{i}", token)["status"]
        if status != "processing":
            pending.discard(i)
            failed += status == "failed"
    time.sleep(0.05)
total = time.monotonic() - start
megabytes = sum(len(photos[i % len(photos)]) for i in range(count)) / 1e6
print(f"{count} photos ({megabytes:.0f} MB) from {clients} clients: uploaded in {uploaded:.2f} s, "
      f"all processed in {total:.2f} s: {count / total:.2f} images/s ({failed} failed)")
PY
after=$(cpu)
awk -v b="$before" -v a="$after" -v n="$count" 'BEGIN { printf "server CPU: %.1f s in all, %.2f CPU-s per image (three variants)\n", a - b, (a - b) / n }'
