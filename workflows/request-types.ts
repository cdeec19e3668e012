/** Data-subject request types and the policy's refusal grounds (D10): shared by the API, Postgres and workflows. */
export const REQUEST_TYPES = ['access', 'rectification', 'erasure', 'restriction', 'objection', 'marketing_opt_out'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];
export const REFUSAL_CODES = ['repetitive', 'disproportionate_effort', 'others_privacy', 'impractical', 'not_required_by_law'] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];
