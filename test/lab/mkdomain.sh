#!/bin/bash
# mkdomain.sh INDEX [PROFILE] > dom.xml -- print the libvirt domain XML of lab guest INDEX.
#   INDEX    1..N -> name instance-%08x (hex, like Nova), uuid c0ffee00-0000-4000-8000-%012x
#   PROFILE  stats     (default) <memballoon model='virtio'><stats period='$PERIOD'/></memballoon>
#            nostats   <memballoon model='virtio'/> (no stats polling, period 0)
#            none      <memballoon model='none'/>
#            noballoon like stats, plus guest cmdline noballoon=1 (guest does not load virtio_balloon)
#            paused    same XML as stats (up.sh suspends it once it reports stats)
#            shutoff   same XML as stats (up.sh defines it but does not start it)
# TCG guest (type='qemu': KVM does not work on the lab machines), 128 MiB, Nova 1.1 metadata.
# Env: MEM_MIB (128), PERIOD (10), FILL_MIB (24), WAVE_MIB (0), VIRT_TYPE (qemu),
#      GUEST_DIR (${LAB_STATE:-/var/lib/libvirt/lab}/guest), RUN_DIR (${LAB_STATE:-/var/lib/libvirt/lab}),
#      FLAVOR (m1.tiny), EXTRA_CMDLINE (appended to the guest kernel cmdline)
set -euo pipefail
IDX=${1:?usage: mkdomain.sh INDEX [stats|nostats|none|noballoon|paused|shutoff]}
PROFILE=${2:-stats}
if ! [[ $IDX =~ ^[0-9]+$ ]] || [ $((10#$IDX)) -lt 1 ]; then
  echo "mkdomain.sh: INDEX must be a positive integer, got '$IDX'" >&2; exit 2
fi
IDX=$((10#$IDX))
MEM_MIB=${MEM_MIB:-128}
PERIOD=${PERIOD:-10}
FILL_MIB=${FILL_MIB:-24}
WAVE_MIB=${WAVE_MIB:-0}
VIRT_TYPE=${VIRT_TYPE:-qemu}
STATE=${LAB_STATE:-/var/lib/libvirt/lab}
GUEST_DIR=${GUEST_DIR:-$STATE/guest}
RUN_DIR=${RUN_DIR:-$STATE}
FLAVOR=${FLAVOR:-m1.tiny}
NAME=$(printf 'instance-%08x' "$IDX")
# deterministic ids so tests can assert on them
UUID=$(printf 'c0ffee00-0000-4000-8000-%012x' "$IDX")
USER_UUID=a1b2c3d4-0000-4000-8000-000000000001
PROJ_UUID=a1b2c3d4-0000-4000-8000-0000000000aa
IMAGE_UUID=a1b2c3d4-0000-4000-8000-00000000beef
KIB=$((MEM_MIB * 1024))
CMDLINE="console=ttyS0 panic=-1 fill=$FILL_MIB wave=$WAVE_MIB"
case "$PROFILE" in
  stats|paused|shutoff) MB="<memballoon model='virtio'><stats period='$PERIOD'/></memballoon>" ;;
  noballoon) MB="<memballoon model='virtio'><stats period='$PERIOD'/></memballoon>"; CMDLINE="$CMDLINE noballoon=1" ;;
  nostats)   MB="<memballoon model='virtio'/>" ;;
  none)      MB="<memballoon model='none'/>" ;;
  *) echo "mkdomain.sh: unknown profile '$PROFILE' (stats nostats none noballoon paused shutoff)" >&2; exit 2 ;;
esac
CMDLINE="$CMDLINE${EXTRA_CMDLINE:+ $EXTRA_CMDLINE}"
cat <<EOF
<domain type='$VIRT_TYPE'>
  <name>$NAME</name>
  <uuid>$UUID</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:package version="26.2.1"/>
      <nova:name>lab-vm-$IDX</nova:name>
      <nova:creationTime>2026-11-26 12:00:0$((IDX % 10))</nova:creationTime>
      <nova:flavor name="$FLAVOR">
        <nova:memory>$MEM_MIB</nova:memory>
        <nova:disk>1</nova:disk>
        <nova:swap>0</nova:swap>
        <nova:ephemeral>0</nova:ephemeral>
        <nova:vcpus>1</nova:vcpus>
      </nova:flavor>
      <nova:owner>
        <nova:user uuid="$USER_UUID">admin</nova:user>
        <nova:project uuid="$PROJ_UUID">demo</nova:project>
      </nova:owner>
      <nova:root type="image" uuid="$IMAGE_UUID"/>
    </nova:instance>
  </metadata>
  <memory unit='KiB'>$KIB</memory>
  <currentMemory unit='KiB'>$KIB</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <sysinfo type='smbios'>
    <system>
      <entry name='manufacturer'>OpenStack Foundation</entry>
      <entry name='product'>OpenStack Nova</entry>
      <entry name='version'>26.2.1</entry>
      <entry name='serial'>$UUID</entry>
      <entry name='uuid'>$UUID</entry>
      <entry name='family'>Virtual Machine</entry>
    </system>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST_DIR/vmlinuz</kernel>
    <initrd>$GUEST_DIR/initrd.gz</initrd>
    <cmdline>$CMDLINE</cmdline>
    <smbios mode='sysinfo'/>
  </os>
  <features><acpi/><apic/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'>
      <source path='$RUN_DIR/$NAME.console.log'/>
      <target port='0'/>
    </serial>
    $MB
  </devices>
</domain>
EOF
