#!/usr/bin/python3
# Debian's ceilometer-polling (the entry point /usr/bin/ceilometer-polling runs: Debian 12's Zed, and
# Debian 13's 24.0.0 in the trixie root, where both patched methods are unchanged), with one change
# for the benchmark: each polling cycle, PollingTask.poll_and_notify (discovery, inspection, samples,
# notifications sent), writes a start and an end line to stderr with the process's CPU time
# (time.process_time: user + system, every thread) and, when BENCH_LIBVIRTD_PID is set, libvirtd's CPU
# time (the sum of its threads' /proc schedstat run time) around it. Ceilometer logs when a pollster
# starts but not when a cycle's last notification has gone, and its pollsters run in random order,
# so the log alone cannot delimit a cycle. The counterpart of bench/compare/ceilopoll-timed.ts.
#
#   bench-compare cycle start <wall s> <pid> <agent cpu s> <libvirtd cpu s>
#   bench-compare cycle end <wall s> <pid> <agent cpu s> <libvirtd cpu s> <cycle s> -1 <samples sent>
import os
import sys
import time

from ceilometer.polling import manager

_LIBVIRTD = os.environ.get('BENCH_LIBVIRTD_PID')


def _libvirtd_cpu():
    if not _LIBVIRTD:
        return -1.0
    ns = 0
    try:
        tasks = os.listdir('/proc/%s/task' % _LIBVIRTD)
    except OSError:
        return -1.0
    for t in tasks:
        try:
            with open('/proc/%s/task/%s/schedstat' % (_LIBVIRTD, t)) as f:
                ns += int(f.read().split()[0])
        except OSError:
            pass
    return ns / 1e9


_sent = [0]


def _counted(send_notification):
    def wrapper(self, samples):
        _sent[0] += len(samples)
        return send_notification(self, samples)
    return wrapper


def _timed(poll_and_notify):
    def wrapper(self):
        _sent[0] = 0
        lv0 = _libvirtd_cpu()
        c0 = time.process_time()
        t0 = time.monotonic()
        os.write(2, ('bench-compare cycle start %.6f %d %.6f %.6f\n' % (time.time(), os.getpid(), c0, lv0)).encode())
        try:
            return poll_and_notify(self)
        finally:
            secs = time.monotonic() - t0
            c1 = time.process_time()
            lv1 = _libvirtd_cpu()
            os.write(2, ('bench-compare cycle end %.6f %d %.6f %.6f %.6f -1 %d\n' % (time.time(), os.getpid(), c1, lv1, secs, _sent[0])).encode())
    return wrapper


manager.PollingTask.poll_and_notify = _timed(manager.PollingTask.poll_and_notify)
manager.PollingTask._send_notification = _counted(manager.PollingTask._send_notification)

from ceilometer.cmd.polling import main  # noqa: E402  (after the patch: main builds the tasks)

sys.argv[0] = '/usr/bin/ceilometer-polling'
sys.exit(main())
