// CPU seconds of a process's threads from /proc/<pid>/task/*/stat, for benches that tell
// the JavaScript thread from the rest (V8's compiler and GC helpers, libuv's pool,
// LevelDB's compaction thread): the load of a shared machine moves CPU seconds far less
// than wall time.

import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime and stime in /proc, 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) of each thread by group: "main" (the process's first thread) or the thread's name, threads of one name summed. */
export function threadCpu(pid: number = process.pid): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const group = Number(tid) === pid ? 'main' : name;
    out.set(group, (out.get(group) ?? 0) + (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND);
  }
  return out;
}
