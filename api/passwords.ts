import { hash, verify } from '@node-rs/argon2';
import pLimit from 'p-limit';

/** Argon2id, memory-hard (OWASP's minimum: 19 MiB, 2 passes). */
const ARGON2 = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/**
 * Argon2 is memory- and CPU-hard on purpose: at most two hashes at once per process, so a
 * flood of logins, set-password or closure calls queues here instead of starving every other route.
 */
const hashing = pLimit(2);

/** Verified against when the email is unknown, so a miss takes as long as a wrong password. */
const DUMMY_HASH = await hash('not-a-real-password', ARGON2);

export const hashPassword = (password: string) => hashing(() => hash(password, ARGON2));

/** Whether `password` matches `stored`; with no stored hash it still spends the same time, and says no. */
export const verifyPassword = async (stored: string | null | undefined, password: string) =>
  (await hashing(() => verify(stored ?? DUMMY_HASH, password))) && !!stored;
