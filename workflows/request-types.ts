/** Data-subject request types and the lawful refusal grounds (D10): shared by the API, Postgres and workflows. */
export const REQUEST_TYPES = ['access', 'rectification', 'erasure', 'restriction', 'objection', 'marketing_opt_out'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

/**
 * The grounds a refusal may give, each tied to its article and to the request types it may
 * answer (D10, as far as the law allows the policy's grounds): "impractical" or
 * "disproportionate technical effort" are not grounds on their own. `evidence` says what a
 * refusal on that ground must rest on.
 */
export const REFUSAL_GROUNDS = {
  manifestly_unfounded: { article: 'GDPR art. 12(5)', types: ['access', 'rectification', 'erasure', 'restriction', 'objection'] },
  excessive: { article: 'GDPR art. 12(5)', types: ['access', 'rectification', 'erasure', 'restriction', 'objection'], evidence: 'the repetitive flag or a staff note' },
  identity_not_verified: { article: 'GDPR art. 12(6)', types: ['access', 'rectification', 'erasure', 'restriction', 'objection'] },
  rights_of_others: { article: 'GDPR art. 15(4)', types: ['access'] },
  legal_claims: { article: 'GDPR art. 17(3)(e)', types: ['erasure'] },
  legal_obligation: { article: 'GDPR art. 17(3)(b)', types: ['erasure'] },
  compelling_grounds: { article: 'GDPR art. 21(1)', types: ['objection'] },
} as const satisfies Record<string, { article: string; types: readonly RequestType[]; evidence?: string }>;

export type RefusalCode = keyof typeof REFUSAL_GROUNDS;
export const REFUSAL_CODES = Object.keys(REFUSAL_GROUNDS) as RefusalCode[];

/**
 * Why a refusal may not be given, or undefined when it may. `repetitive` is the request's flag;
 * `evidence` the officer's note on what makes it excessive.
 */
export function refusalProblem(r: { type: string; reasonCode?: string | null; hasReason: boolean; repetitive: boolean; hasEvidence: boolean }): { field: string; message: string } | undefined {
  const ground = r.reasonCode ? (REFUSAL_GROUNDS as Record<string, { types: readonly string[] }>)[r.reasonCode] : undefined;
  if (!r.reasonCode || !ground) return { field: 'reasonCode', message: `a refusal needs one of: ${REFUSAL_CODES.join(', ')}` };
  if (!ground.types.includes(r.type)) return { field: 'reasonCode', message: `${r.reasonCode} is no ground to refuse a ${r.type} request (it applies to: ${ground.types.join(', ')})` };
  if (!r.hasReason) return { field: 'reason', message: 'a refusal explains itself to the person' };
  if (r.reasonCode === 'excessive' && !r.repetitive && !r.hasEvidence) {
    return { field: 'evidence', message: 'excessive needs evidence: the repetitive flag, or a note on what makes it excessive (Art. 12(5): the burden is ours)' };
  }
  return undefined;
}

/** The failure type of an email the receiving server refused for good (a 5xx reply): shared by the outbox and the workflows. */
export const PERMANENT_SMTP_FAILURE = 'PermanentSmtpFailure';

/** The failure type of an act whose stated actor may not do it (issue 12: roles below the API); workflows and the API know it. */
export const ACTOR_NOT_ALLOWED = 'ActorNotAllowed';
