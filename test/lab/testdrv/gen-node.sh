#!/bin/bash
# gen-node.sh N > node-N.xml -- print a libvirt test-driver node with N domains carrying Nova 1.1
# metadata, for benchmarks (N=100, 1000, ...).
#   domain i (1..N): name instance-%08x(i), uuid c0ffee00-0000-4000-9000-%012x(i),
#     nova:name bench-vm-i, flavor cycling m1.tiny (512 MiB) / m1.small (1024) / m1.medium (2048);
#   state: i%20==10 paused, i%20==0 shut off, otherwise running (90 % running);
#   balloon: i%10==7 <memballoon model='none'/>, otherwise virtio with <stats period='10'/>.
# Use it through the lab libvirtd (root reads the file, so give an absolute, readable path):
#   test/lab/testdrv/gen-node.sh 1000 > /var/lib/libvirt/lab/node-1000.xml
#   virsh -c 'test+unix:///var/lib/libvirt/lab/node-1000.xml' list --all
# or in-process: virsh -c 'test:///var/lib/libvirt/lab/node-1000.xml' ...
set -euo pipefail
N=${1:?usage: gen-node.sh N}
if ! [[ $N =~ ^[0-9]+$ ]] || [ $((10#$N)) -lt 1 ]; then
  echo "gen-node.sh: N must be a positive integer, got '$N'" >&2; exit 2
fi
N=$((10#$N))
FLAVORS=(m1.tiny m1.small m1.medium)
MIBS=(512 1024 2048)
printf '%s\n' "<?xml version='1.0'?>" '<node>' \
  '  <cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads><active>2</active></cpu>' \
  "  <memory>$((N * 2 * 1024 * 1024 + 4 * 1024 * 1024))</memory>"
for ((i = 1; i <= N; i++)); do
  f=$(((i - 1) % 3)); kib=$((MIBS[f] * 1024))
  printf -v name 'instance-%08x' "$i"; printf -v uuid 'c0ffee00-0000-4000-9000-%012x' "$i"
  printf -v ctime '2026-11-26 12:%02d:%02d' $(((i / 60) % 60)) $((i % 60))
  if ((i % 10 == 7)); then mb="<memballoon model='none'/>"; else mb="<memballoon model='virtio'><stats period='10'/></memballoon>"; fi
  runstate=""
  if ((i % 20 == 10)); then runstate="    <test:runstate>3</test:runstate>
"; elif ((i % 20 == 0)); then runstate="    <test:runstate>5</test:runstate>
"; fi
  printf '%s' "  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>$name</name>
    <uuid>$uuid</uuid>
    <metadata>
      <nova:instance xmlns:nova=\"http://openstack.org/xmlns/libvirt/nova/1.1\">
        <nova:package version=\"26.2.1\"/>
        <nova:name>bench-vm-$i</nova:name>
        <nova:creationTime>$ctime</nova:creationTime>
        <nova:flavor name=\"${FLAVORS[f]}\">
          <nova:memory>${MIBS[f]}</nova:memory>
          <nova:disk>1</nova:disk>
          <nova:swap>0</nova:swap>
          <nova:ephemeral>0</nova:ephemeral>
          <nova:vcpus>1</nova:vcpus>
        </nova:flavor>
        <nova:owner>
          <nova:user uuid=\"a1b2c3d4-0000-4000-8000-000000000001\">admin</nova:user>
          <nova:project uuid=\"a1b2c3d4-0000-4000-8000-0000000000aa\">demo</nova:project>
        </nova:owner>
        <nova:root type=\"image\" uuid=\"a1b2c3d4-0000-4000-8000-00000000beef\"/>
      </nova:instance>
    </metadata>
    <memory unit='KiB'>$kib</memory>
    <currentMemory unit='KiB'>$kib</currentMemory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
    <devices>
      $mb
    </devices>
$runstate  </domain>
"
done
echo '</node>'
