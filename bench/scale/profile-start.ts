// Where a member's start went: self time per function from the profile `restart.ts
// --cpu-prof DIR` wrote for one start (DIR/<variant>-<round>), over the first
// --seconds of it (the time to ready that restart.ts printed), the rest (the stop's
// export) left out.
//
//   npx tsx bench/scale/profile-start.ts --dir /tmp/prof/image-1 --seconds 5.2 [--top 25]

import { arg } from '../member.js';
import { readProfile, selfTime } from '../cpu-profile.js';

const { file, profile } = readProfile(arg('dir', ''));
const seconds = Number(arg('seconds', '0'));
const top = Number(arg('top', '25'));
const length = (profile.endTime - profile.startTime) / 1e6;
const { busySeconds, rows } = selfTime(profile, { fromEnd: length, toEnd: Math.max(0, length - seconds) });
console.log(`${file}: the first ${seconds} s of ${length.toFixed(1)} s; ${busySeconds.toFixed(2)} s busy on the main thread`);
for (const r of rows.slice(0, top)) console.log(`${(r.share * 100).toFixed(1).padStart(6)} %  ${r.name}`);
