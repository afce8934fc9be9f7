// Raft snapshot files (etcd's etcdserver/api/snap): `<snap dir>/%016x-%016x.snap`
// named by term and index, holding snappb.snapshot{crc, data} where data is a
// marshaled raftpb.Snapshot and crc its CRC-32C. The state machine itself lives in
// the store; the snapshot's data is whatever small payload the server puts there.
//
// Unlike etcd 3.4 (which writes the final name directly), a snapshot is written to
// `<name>.tmp`, synced, renamed and the directory synced, so a crash mid-write
// leaves the previous snapshot as the newest one. A file that fails to load is
// renamed `<name>.broken` and the next older one is used, as etcd does.

import { join } from 'node:path';
import { type Snapshot, decodeSnapshot, encodeSnapshot } from '../raftpb/index.js';
import { crc32c } from '../pkg/crc32c.js';
import { type Disk, mkdirDurable, writeFully } from './disk.js';
import { SnapError, describe } from './errors.js';
import { type WalLogger, silentLogger } from './logger.js';
import { TEMP_DB_PREFIX, parseSnapName, snapName } from './names.js';
import { nodeDisk } from './nodedisk.js';
import { purgeFiles } from './retention.js';
import { type WalSnapshot, decodeSnapEnvelope, encodeSnapEnvelope } from './walpb.js';

const TMP_SUFFIX = '.snap.tmp';

export interface SnapshotterOptions {
  readonly disk?: Disk;
  readonly logger?: WalLogger;
  /** Called with the duration of each snap file fsync (etcd_snap_fsync_duration_seconds). */
  readonly onFsync?: (seconds: number) => void;
  /** ... of each snapshot's encoding, from the start of its save (etcd_debugging_snap_save_marshalling_duration_seconds) */
  readonly onMarshalled?: (seconds: number) => void;
  /** ... of each save that succeeded, whole (etcd_debugging_snap_save_total_duration_seconds) */
  readonly onSaved?: (seconds: number) => void;
}

export class Snapshotter {
  private readonly disk: Disk;
  private readonly logger: WalLogger;

  constructor(
    readonly dir: string,
    private readonly opts: SnapshotterOptions = {},
  ) {
    this.disk = opts.disk ?? nodeDisk;
    this.logger = opts.logger ?? silentLogger;
  }

  /** Durably writes `snapshot` as its own snap file; an empty snapshot (index 0) is skipped, as in etcd. */
  async save(snapshot: Snapshot): Promise<void> {
    const { term, index } = snapshot.metadata;
    if (index === 0) return;
    const started = performance.now();
    const body = encodeSnapshot(snapshot);
    const bytes = encodeSnapEnvelope({ crc: crc32c(body), data: body });
    this.opts.onMarshalled?.((performance.now() - started) / 1000);
    const path = join(this.dir, snapName(term, index));
    const tmp = path.slice(0, -'.snap'.length) + TMP_SUFFIX;
    await mkdirDurable(this.disk, this.dir);
    const file = await this.disk.open(tmp, 'create');
    try {
      await writeFully(file, bytes, 0);
      const t0 = performance.now();
      await file.fsync();
      this.opts.onFsync?.((performance.now() - t0) / 1000);
    } catch (err) {
      await file.close().catch(() => undefined);
      await this.disk.unlink(tmp).catch(() => undefined);
      this.logger.warn({ path, error: describe(err) }, 'failed to write a snap file');
      throw err;
    }
    await file.close();
    await this.disk.rename(tmp, path);
    await this.disk.fsyncDir(this.dir);
    this.opts.onSaved?.((performance.now() - started) / 1000);
  }

  /** The newest snapshot that loads cleanly, or undefined when there is none. */
  load(): Promise<Snapshot | undefined> {
    return this.loadMatching(() => true);
  }

  /**
   * The newest loadable snapshot that the WAL also records (`walSnaps`, from
   * validSnapshotEntries): a snap file written just before a crash, whose WAL
   * marker never made it, is passed over (etcd 3.4.23's LoadNewestAvailable).
   * `walSnaps` is called only once a snap file has loaded: with none there is nothing
   * to match, and a restart is spared a pass over the whole WAL.
   */
  loadNewestAvailable(walSnaps: () => Promise<readonly WalSnapshot[]>): Promise<Snapshot | undefined> {
    let recorded: Promise<readonly WalSnapshot[]> | undefined;
    return this.loadMatching(async (s) => (await (recorded ??= walSnaps())).some((w) => w.index === s.metadata.index && w.term === s.metadata.term));
  }

  /** Keeps at most `max` snap files (--max-snapshots), removing the oldest. */
  purge(max = 5): Promise<string[]> {
    return purgeFiles(this.dir, '.snap', max, { disk: this.disk, logger: this.logger });
  }

  /** Reads and checks one snap file; throws SnapError saying what is wrong with it. */
  static async read(path: string, disk: Disk = nodeDisk): Promise<Snapshot> {
    const bytes = await disk.readFile(path);
    if (bytes.length === 0) throw new SnapError(`snap: empty snapshot (${path} is empty)`);
    let env;
    try {
      env = decodeSnapEnvelope(bytes);
    } catch (err) {
      throw new SnapError(`snap: corrupted snapshot file ${path}: ${describe(err)}`);
    }
    if (env.data === undefined || env.data.length === 0 || env.crc === 0) {
      throw new SnapError(`snap: empty snapshot (${path} holds no data)`);
    }
    const crc = crc32c(env.data);
    if (crc !== env.crc) throw new SnapError(`snap: crc mismatch in ${path} (file says ${env.crc}, data has ${crc})`);
    try {
      return decodeSnapshot(env.data);
    } catch (err) {
      throw new SnapError(`snap: corrupted snapshot file ${path}: ${describe(err)}`);
    }
  }

  private async loadMatching(accept: (s: Snapshot) => boolean | Promise<boolean>): Promise<Snapshot | undefined> {
    const names = await this.snapNames();
    for (const name of names) {
      const path = join(this.dir, name);
      let snap: Snapshot;
      try {
        snap = await Snapshotter.read(path, this.disk);
        const want = parseSnapName(name)!;
        if (snap.metadata.term !== want.term || snap.metadata.index !== want.index) {
          throw new SnapError(
            `snap: ${path} holds term ${snap.metadata.term} index ${snap.metadata.index}, not what its name says`,
          );
        }
      } catch (err) {
        await this.markBroken(path, err);
        continue;
      }
      if (await accept(snap)) return snap;
    }
    return undefined;
  }

  /** Snap file names, newest first; removes temp files left by an interrupted save, and orphaned temp db files as etcd does. */
  private async snapNames(): Promise<string[]> {
    let names: string[];
    try {
      names = await this.disk.readdir(this.dir);
    } catch {
      return [];
    }
    const snaps: string[] = [];
    for (const name of names) {
      if (name.endsWith(TMP_SUFFIX)) {
        this.logger.info({ path: join(this.dir, name) }, 'removing an incomplete snap file left by a crash');
        await this.disk.unlink(join(this.dir, name)).catch(() => undefined);
      } else if (name.startsWith(TEMP_DB_PREFIX)) {
        this.logger.info({ path: join(this.dir, name) }, 'found orphaned temporary db file; deleting');
        await this.disk.unlink(join(this.dir, name)).catch(() => undefined);
      } else if (parseSnapName(name) !== undefined) {
        snaps.push(name);
      }
    }
    return snaps.sort().reverse();
  }

  private async markBroken(path: string, err: unknown): Promise<void> {
    this.logger.warn({ path, error: describe(err) }, 'failed to read a snap file');
    const broken = `${path}.broken`;
    try {
      await this.disk.rename(path, broken);
      this.logger.warn({ path, 'broken-path': broken }, 'renamed to a broken snap file');
    } catch (rerr) {
      this.logger.warn({ path, 'broken-path': broken, error: describe(rerr) }, 'failed to rename a broken snap file');
    }
  }
}
