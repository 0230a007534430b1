// Safety nets for labs: one set of process hooks (exit, SIGINT, SIGTERM, SIGHUP, uncaught
// exceptions) that tear down every live lab synchronously, installed while at least one lab lives;
// and owner markers in /run so a later run can sweep labs whose process was SIGKILLed.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { runSync } from './netns.ts';

export interface Teardown {
  /** Kill everything and delete the namespaces, synchronously, never throwing. */
  destroySync(): void;
}

const live = new Set<Teardown>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function destroyAll(): void {
  for (const t of [...live]) {
    live.delete(t);
    try {
      t.destroySync();
    } catch {
      /* best effort: the process is going away */
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  destroyAll();
  uninstall();
  // Listening for a signal disables Node's default action; if nobody else listens, restore it by
  // raising the signal again, so the process still dies of SIGINT/SIGTERM as its caller expects.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

// The monitor variant observes an uncaught exception without changing what Node does with it
// (crash, or a test runner's own handler); 'exit' follows a crash and finds nothing left to do.
const onUncaught = () => destroyAll();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', destroyAll);
  process.on('uncaughtExceptionMonitor', onUncaught);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', destroyAll);
  process.off('uncaughtExceptionMonitor', onUncaught);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Registers a live lab; the hooks are installed with the first one. */
export function track(t: Teardown): void {
  live.add(t);
  install();
}

/** Unregisters a lab (after destroy); the hooks go with the last one. */
export function untrack(t: Teardown): void {
  live.delete(t);
  if (live.size === 0) uninstall();
}

// ---------------------------------------------------------------- owner markers

const MARKER_DIR = '/run/imsec-lab';

interface Marker {
  pid: number;
  /** Field 22 of /proc/PID/stat: tells a reused pid from the original process. */
  start: string;
  namespaces: string[];
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Records that this process owns `namespaces` (best effort: a lab works without the marker). */
export function writeMarker(prefix: string, namespaces: readonly string[]): void {
  try {
    mkdirSync(MARKER_DIR, { recursive: true });
    const m: Marker = { pid: process.pid, start: startTime(process.pid) ?? '', namespaces: [...namespaces] };
    writeFileSync(`${MARKER_DIR}/${prefix}.json`, JSON.stringify(m));
  } catch {
    /* no /run: no sweeping for this lab */
  }
}

export function removeMarker(prefix: string): void {
  rmSync(`${MARKER_DIR}/${prefix}.json`, { force: true });
}

/** Kills whatever still runs inside `ns` and deletes it; ignores a namespace that is gone. */
export function deleteNamespaceSync(ns: string): string | undefined {
  const pids = runSync(['ip', 'netns', 'pids', ns], { check: false });
  for (const p of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const r = runSync(['ip', 'netns', 'del', ns], { check: false });
  if (r.code !== 0 && existsSync(`/run/netns/${ns}`)) return `ip netns del ${ns}: ${r.stderr.trim()}`;
  return undefined;
}

/**
 * Removes labs left behind by processes that died without running their hooks (SIGKILL, OOM):
 * only namespaces named in a marker whose owner process is gone. Returns the namespaces removed.
 */
export function sweepStaleLabs(): string[] {
  let files: string[];
  try {
    files = readdirSync(MARKER_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const f of files) {
    let m: Marker;
    try {
      m = JSON.parse(readFileSync(`${MARKER_DIR}/${f}`, 'utf8')) as Marker;
    } catch {
      continue; // being written right now, or not ours to judge
    }
    const alive = startTime(m.pid);
    if (alive !== undefined && (m.start === '' || alive === m.start)) continue;
    for (const ns of [...m.namespaces].reverse()) {
      if (!existsSync(`/run/netns/${ns}`)) continue;
      try {
        if (!deleteNamespaceSync(ns)) removed.push(ns);
      } catch {
        /* ip missing: nothing we can do */
      }
    }
    rmSync(`${MARKER_DIR}/${f}`, { force: true });
  }
  return removed;
}
