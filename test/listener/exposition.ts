// Reads Prometheus text exposition format 0.0.4 into families, to compare etcd-ts's
// /metrics with real etcd's and one scrape with a later one.

export interface Family {
  name: string;
  help: string;
  type: string;
  /** label names of the first sample, in the order printed (le and quantile left out) */
  labelNames: string[] | undefined;
  /** upper bounds of a histogram's buckets (its first child), +Inf left out */
  buckets: number[] | undefined;
  /** every sample line's value, by its name and labels as printed */
  samples: Map<string, number>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, help: '', type: 'untyped', labelNames: undefined, buckets: undefined, samples: new Map() };
      families.set(name, f);
    }
    return f;
  };
  let current: Family | undefined;
  const firstChild = new Map<Family, string>();
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      current = family(meta[2]!);
      if (meta[1] === 'HELP') current.help = meta[3]!;
      else current.type = meta[3]!;
      continue;
    }
    const m = SAMPLE.exec(line);
    if (m === null || current === undefined) continue;
    if (!m[1]!.startsWith(current.name)) throw new Error(`sample ${m[1]} outside its family ${current.name}`);
    const labels = [...(m[2] ?? '').matchAll(LABEL)].map((l) => [l[1]!, l[2]!] as const);
    const own = labels.filter(([k]) => k !== 'le' && k !== 'quantile');
    const child = JSON.stringify(own);
    if (current.labelNames === undefined) {
      current.labelNames = own.map(([k]) => k);
      firstChild.set(current, child);
    }
    const le = labels.find(([k]) => k === 'le')?.[1];
    if (m[1] === `${current.name}_bucket` && le !== undefined && le !== '+Inf' && child === firstChild.get(current)) {
      current.buckets = [...(current.buckets ?? []), Number(le)];
    }
    current.samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return families;
}
