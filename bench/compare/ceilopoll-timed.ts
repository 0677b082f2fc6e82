// Preloaded into the compiled agent (`node --import <build>/bench/compare/ceilopoll-timed.js
// <build>/src/cli/main.js run ...`): the counterpart of ceilometer-polling-timed.py. Each polling cycle
// (Agent.runCycle: read the stats, bring the inventory up to date, inspect, hand the notifications to
// the spool) writes a start and an end line to stderr with the process's CPU time (process.cpuUsage:
// user + system, every thread) and, when BENCH_LIBVIRTD_PID is set, libvirtd's CPU time (the sum of its
// threads' /proc schedstat run time) around it. The end line also carries the libvirt calls the cycle
// made (CycleResult.libvirtCalls) and the samples it produced (from Agent.lastCycleResult). Nothing
// else changes.
//
//   bench-compare cycle start <wall s> <pid> <agent cpu s> <libvirtd cpu s>
//   bench-compare cycle end <wall s> <pid> <agent cpu s> <libvirtd cpu s> <cycle s> <libvirt calls> <samples>

import { readdirSync, readFileSync, writeSync } from 'node:fs';

import { Agent } from '../../src/agent/agent.js';

const libvirtd = process.env.BENCH_LIBVIRTD_PID;

/** libvirtd's CPU time, s, from its threads' schedstat (ns, unlike /proc/PID/stat's 10 ms ticks) */
export function libvirtdCpuSeconds(pid = libvirtd): number {
  if (!pid) return -1;
  let ns = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return -1;
  }
  for (const t of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between readdir and read
    }
  }
  return ns / 1e9;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// runCycle is private to Agent; the preload reaches it the way JavaScript sees it.
interface Timed extends Pick<Agent, 'lastCycleResult'> {
  runCycle(...args: unknown[]): Promise<void>;
}
const proto = Agent.prototype as unknown as Timed;
const runCycle = proto.runCycle;
proto.runCycle = async function timedRunCycle(this: Timed, ...args: unknown[]): Promise<void> {
  const lv0 = libvirtdCpuSeconds();
  const c0 = cpuSeconds();
  const t0 = performance.now();
  writeSync(2, `bench-compare cycle start ${(Date.now() / 1000).toFixed(6)} ${process.pid} ${c0.toFixed(6)} ${lv0.toFixed(6)}\n`);
  try {
    await runCycle.apply(this, args);
  } finally {
    const secs = (performance.now() - t0) / 1000;
    const c1 = cpuSeconds();
    const lv1 = libvirtdCpuSeconds();
    const last = this.lastCycleResult;
    const calls = last?.libvirtCalls ?? -1;
    const samples = last?.samples ?? -1;
    writeSync(2, `bench-compare cycle end ${(Date.now() / 1000).toFixed(6)} ${process.pid} ${c1.toFixed(6)} ${lv1.toFixed(6)} ${secs.toFixed(6)} ${calls} ${samples}\n`);
  }
};
