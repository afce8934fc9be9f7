// The deterministic Raft cluster simulator (used by test/raft and scripts/sim.ts).

export { Checker, InvariantViolation } from './checker.js';
export { Rng } from '../../pkg/rng.js';
export type { SimProfile } from './profile.js';
export { type Persistence, persistenceModes, type SimOptions, type SimResult, type SimStats, Simulation, runSeed } from './simulation.js';
