#!/usr/bin/env bash
# Image variants (matsuri-imaging): CPU-seconds (user + sys) and peak RSS to turn one
# photo into the three WebP variants (thumbnail 100×100 cropped, medium inside 800,
# large inside 1920, quality 80), for each photo in shared/data/images, made three ways:
#
#   ours     the release example `crates/imaging/examples/variants.rs` (one process);
#   vips     `vipsthumbnail` run three times (one per variant; shrink-on-load each time),
#            CPU summed, peak the largest of the three;
#   pillow   Pillow with `draft()` (libjpeg DCT scaling), large → medium → thumbnail in one
#            process, in a venv under /var/tmp.
#
#   bench/images.sh [PHOTO...]       # default: every *.jpg in shared/data/images
#
# RUNS (default 5) repetitions each; the table shows the median CPU and the median peak.
# Missing tools are installed: Debian's `time` and `libvips-tools`, and Pillow from PyPI.
# The machine is shared and noisy: compare the columns of one run, by ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-5}
images_dir=${MATSURI_SAMPLE_IMAGES:-../shared/data/images}
venv=${PILLOW_VENV:-/var/tmp/imaging-pillow}
if [ $# -gt 0 ]; then photos=("$@"); else photos=("$images_dir"/*.jpg); fi

need_apt=()
[ -x /usr/bin/time ] || need_apt+=(time)
command -v vipsthumbnail >/dev/null || need_apt+=(libvips-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! "$venv/bin/python" -c 'import PIL' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pillow
fi

cargo build --release --quiet -p matsuri-imaging --example variants
ours=${CARGO_TARGET_DIR:-target}/release/examples/variants

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/pillow_variants.py" <<'EOF'
"""The same three variants with Pillow: draft() (DCT scaling) to the size the large
variant needs, then large -> medium -> thumbnail, Lanczos, WebP quality 80 (method 4)."""
import sys
from PIL import Image, ImageOps

src, out = sys.argv[1], sys.argv[2]
im = Image.open(src)
w, h = im.size
scale = min(1.0, 1920 / max(w, h))
im.draft("RGB", (int(w * scale), int(h * scale)))
im = ImageOps.exif_transpose(im.convert("RGB"))
large = im.copy()
large.thumbnail((1920, 1920), Image.LANCZOS)
medium = large.copy()
medium.thumbnail((800, 800), Image.LANCZOS)
thumb = ImageOps.fit(medium, (100, 100), Image.LANCZOS)
for name, variant in (("large", large), ("medium", medium), ("thumbnail", thumb)):
    variant.save(f"{out}/{name}.webp", "WEBP", quality=80, method=4)
EOF

# measure OUT_FILE CMD...: appends "user+sys maxrss_kb" of one run to OUT_FILE.
measure() {
  local into=$1
  shift
  /usr/bin/time -f '%U %S %M' -o "$work/time" "$@" >/dev/null
  awk '{ printf "%.3f %d\n", $1 + $2, $3 }' "$work/time" >>"$into"
}

run_vips() {
  local photo=$1 out=$2 total=0 peak=0 one
  for args in "-s 1920x1920> -o $out/large.webp[Q=80,strip]" \
    "-s 800x800> -o $out/medium.webp[Q=80,strip]" \
    "-s 100x100 -m centre -o $out/thumbnail.webp[Q=80,strip]"; do
    # shellcheck disable=SC2086
    /usr/bin/time -f '%U %S %M' -o "$work/time" vipsthumbnail "$photo" $args >/dev/null
    one=$(awk '{ print $1 + $2 }' "$work/time")
    total=$(awk -v a="$total" -v b="$one" 'BEGIN { print a + b }')
    peak=$(awk -v p="$peak" '{ print ($3 > p ? $3 : p) }' "$work/time")
  done
  printf '%.3f %d\n' "$total" "$peak"
}

# median FILE: "cpu_s peak_mb" medians of the runs in FILE.
median() {
  local cpu mb
  cpu=$(cut -d' ' -f1 "$1" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  mb=$(cut -d' ' -f2 "$1" | sort -n | awk '{ a[NR] = $1 } END { printf "%.0f", a[int((NR + 1) / 2)] / 1024 }')
  echo "$cpu $mb"
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); $(vips --version); Pillow $("$venv/bin/python" -c 'import PIL; print(PIL.__version__)'); $runs runs each, medians"
printf '%-36s %-12s %-6s | %-15s | %-15s | %-15s | %s\n' photo size kind "ours s / MB" "vips×3 s / MB" "pillow s / MB" "ours/vips ours/pillow (CPU)"
for photo in "${photos[@]}"; do
  name=$(basename "$photo")
  mkdir -p "$work/ours" "$work/vips" "$work/pillow"
  : >"$work/ours.runs"
  : >"$work/vips.runs"
  : >"$work/pillow.runs"
  for _ in $(seq 1 "$runs"); do
    measure "$work/ours.runs" "$ours" "$photo" "$work/ours"
    run_vips "$photo" "$work/vips" >>"$work/vips.runs"
    measure "$work/pillow.runs" "$venv/bin/python" "$work/pillow_variants.py" "$photo" "$work/pillow"
  done
  size=$("$ours" "$photo" "$work/ours" | awk 'NR == 1 { print $2 }')
  kind=$(python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); print("prog" if d.find(b"\xff\xc2") >= 0 and (d.find(b"\xff\xc0") < 0 or d.find(b"\xff\xc2") < d.find(b"\xff\xc0")) else "base")' "$photo")
  read -r o_cpu o_mb <<<"$(median "$work/ours.runs")"
  read -r v_cpu v_mb <<<"$(median "$work/vips.runs")"
  read -r p_cpu p_mb <<<"$(median "$work/pillow.runs")"
  printf '%-36s %-12s %-6s | %6s s %4s MB | %6s s %4s MB | %6s s %4s MB | %.2f %.2f\n' \
    "$name" "$size" "$kind" "$o_cpu" "$o_mb" "$v_cpu" "$v_mb" "$p_cpu" "$p_mb" \
    "$(awk -v a="$o_cpu" -v b="$v_cpu" 'BEGIN { print a / b }')" \
    "$(awk -v a="$o_cpu" -v b="$p_cpu" 'BEGIN { print a / b }')"
done
