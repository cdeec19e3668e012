import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import pLimit from 'p-limit';

/** Argon2id, memory-hard (OWASP's minimum: 19 MiB, 2 passes). */
const ARGON2 = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/**
 * Argon2 is memory- and CPU-hard on purpose: at most two hashes at once per process, and never
 * one per core (a 2-core machine hashes one at a time), so a flood of logins, set-password or
 * closure calls queues here instead of starving the event loop and every other route.
 */
export const HASHING_CONCURRENCY = Math.max(1, Math.min(2, availableParallelism() - 1));
const hashing = pLimit(HASHING_CONCURRENCY);
let runs = 0;
const limited = <T>(work: () => Promise<T>) =>
  hashing(() => {
    runs += 1;
    return work();
  });

/** Verified against when the email is unknown, so a miss takes as long as a wrong password. */
const DUMMY_HASH = await hash('not-a-real-password', ARGON2);

export const hashPassword = (password: string) => limited(() => hash(password, ARGON2));

/** Whether `password` matches `stored`; with no stored hash it still spends the same time, and says no. */
export const verifyPassword = async (stored: string | null | undefined, password: string) =>
  (await limited(() => verify(stored ?? DUMMY_HASH, password))) && !!stored;

/** This process's argon2 work: hashes running and waiting now, and how many ran since start (tests read it). */
export const hashingLoad = () => ({ running: hashing.activeCount, waiting: hashing.pendingCount, runs });
