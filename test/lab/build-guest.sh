#!/bin/bash
# build-guest.sh [OUTDIR] -- build the tiny lab guest: the Debian cloud kernel (vmlinuz) and a
# busybox-static initramfs that loads the virtio balloon driver and then idles.
# Output: OUTDIR/vmlinuz, OUTDIR/initrd.gz  (default OUTDIR: ${LAB_STATE:-/var/lib/libvirt/lab}/guest)
# Needs: apt lists (apt-get update), busybox-static, cpio, gzip, dpkg-deb.  Nothing is installed
# on the host: the kernel .deb is only downloaded and unpacked in a temporary directory.
# Guest kernel cmdline knobs (read by /init):
#   fill=MiB    put that much data in tmpfs at boot (lowers MemFree = balloon 'unused')
#   wave=MiB    every 30 s alternately add / remove that much tmpfs data
#   noballoon=1 do not load virtio_balloon (a guest without the balloon driver)
# The guest prints "lab-guest: READY" on its serial console once booted.
# FORCE=1 rebuilds even when both files exist.
set -euo pipefail
OUT=${1:-${LAB_STATE:-/var/lib/libvirt/lab}/guest}
mkdir -p "$OUT"
if [ "${FORCE:-0}" != 1 ] && [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.gz" ]; then
  echo "build-guest: $OUT/vmlinuz and initrd.gz already exist (FORCE=1 rebuilds)"; exit 0
fi
for tool in cpio gzip dpkg-deb apt-get apt-cache; do
  command -v "$tool" >/dev/null || { echo "build-guest: '$tool' not found (apt-get install busybox-static cpio)" >&2; exit 1; }
done
BUSYBOX=/bin/busybox   # from busybox-static; the initramfs has no libc, so it must be static
if [ ! -x "$BUSYBOX" ] || LC_ALL=C ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "build-guest: $BUSYBOX is missing or dynamically linked (apt-get install busybox-static)" >&2; exit 1
fi

WORK=$(mktemp -d /tmp/lab-guest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# linux-image-cloud-amd64 -> linux-image-6.1.0-NN-cloud-amd64 (virtio drivers are modules there)
KPKG=$( { apt-cache depends linux-image-cloud-amd64 2>/dev/null || true; } | awk '/Depends: linux-image-[0-9]/ && !k {k = $2} END {print k}')
[ -n "$KPKG" ] || { echo "build-guest: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
echo "build-guest: downloading $KPKG"
# apt's _apt sandbox user must be able to write the download directory
chmod 777 "$WORK"
( cd "$WORK" && apt-get download "$KPKG" >"$WORK/download.log" 2>&1 ) || \
  { cat "$WORK/download.log" >&2; echo "build-guest: apt-get download $KPKG failed" >&2; exit 1; }
dpkg-deb -x "$WORK"/"$KPKG"_*.deb "$WORK/k"
KVER=$(ls "$WORK/k/lib/modules")
MOD="$WORK/k/lib/modules/$KVER/kernel/drivers/virtio"

R="$WORK/root"
mkdir -p "$R"/{bin,dev,proc,sys,mnt,lib/modules,tmp}
cp "$BUSYBOX" "$R/bin/busybox"
# load order follows the modules' depends= fields
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon; do
  cp "$MOD/$m.ko" "$R/lib/modules/"
done
cat > "$R/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# noballoon=1 on the kernel cmdline: do not load virtio_balloon (guest without balloon driver)
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon"
[ "$noballoon" = 1 ] && MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci"
for m in $MODS; do
  insmod /lib/modules/$m.ko && echo "lab-guest: insmod $m ok" || echo "lab-guest: insmod $m FAILED"
done
ls /sys/bus/virtio/drivers/ 2>/dev/null | sed 's/^/lab-guest: virtio driver: /'
# fill=<MiB> on the kernel cmdline: put that much data in tmpfs so MemFree (balloon 'unused') drops
mount -t tmpfs -o size=90% tmpfs /mnt
if [ -n "$fill" ] && [ "$fill" -gt 0 ] 2>/dev/null; then
  dd if=/dev/zero of=/mnt/fill bs=1M count="$fill" 2>/dev/null
  echo "lab-guest: filled $fill MiB in tmpfs"
fi
echo "lab-guest: READY"
grep -E 'MemTotal|MemFree|MemAvailable|^Cached' /proc/meminfo | sed 's/^/lab-guest: /'
# wave=<MiB>: every 30 s alternately add/remove that much tmpfs data (stats change over time)
i=0
while :; do
  sleep 30
  if [ -n "$wave" ] && [ "$wave" -gt 0 ] 2>/dev/null; then
    if [ $((i % 2)) -eq 0 ]; then dd if=/dev/zero of=/mnt/wave bs=1M count="$wave" 2>/dev/null; else rm -f /mnt/wave; fi
    i=$((i + 1))
  fi
  grep -E 'MemFree|MemAvailable' /proc/meminfo | tr -s ' ' | tr '\n' ' ' | sed 's/^/lab-guest: /'; echo
done
EOF
chmod 755 "$R/init"
# write next to the final files, then rename: an interrupted build never leaves a half initrd behind
cp "$WORK/k/boot/vmlinuz-$KVER" "$OUT/.vmlinuz.tmp"
( cd "$R" && find . | cpio -o -H newc --quiet | gzip -9 > "$OUT/.initrd.gz.tmp" )
mv -f "$OUT/.vmlinuz.tmp" "$OUT/vmlinuz"
mv -f "$OUT/.initrd.gz.tmp" "$OUT/initrd.gz"
echo "$KVER" > "$OUT/kernel-version"
echo "build-guest: kernel $KVER -> $OUT ($(du -sh "$OUT" | cut -f1))"
