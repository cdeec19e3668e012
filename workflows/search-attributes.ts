import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * The custom search attributes of docs/contract.md. Ids, statuses and due dates only:
 * never names, email addresses or anything else that identifies a person by itself.
 */
export const CustomerId = defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD);
export const ClientId = defineSearchAttributeKey('ClientId', SearchAttributeType.KEYWORD);
export const RequestType = defineSearchAttributeKey('RequestType', SearchAttributeType.KEYWORD);
export const RequestStatus = defineSearchAttributeKey('RequestStatus', SearchAttributeType.KEYWORD);
export const SlaDueAt = defineSearchAttributeKey('SlaDueAt', SearchAttributeType.DATETIME);
export const SlaBreached = defineSearchAttributeKey('SlaBreached', SearchAttributeType.BOOL);
export const DisputeStatus = defineSearchAttributeKey('DisputeStatus', SearchAttributeType.KEYWORD);
export const PolicyVersion = defineSearchAttributeKey('PolicyVersion', SearchAttributeType.KEYWORD);
export const TransferStatus = defineSearchAttributeKey('TransferStatus', SearchAttributeType.KEYWORD);

export const searchAttributeKeys = [
  CustomerId,
  ClientId,
  RequestType,
  RequestStatus,
  SlaDueAt,
  SlaBreached,
  DisputeStatus,
  PolicyVersion,
  TransferStatus,
] as const;

/** `Name=Type` pairs as the Temporal CLI's `--search-attribute` flag takes them. */
export function searchAttributeFlags(): string[] {
  const cliType: Record<string, string> = {
    [SearchAttributeType.KEYWORD]: 'Keyword',
    [SearchAttributeType.DATETIME]: 'Datetime',
    [SearchAttributeType.BOOL]: 'Bool',
  };
  return searchAttributeKeys.flatMap((k) => ['--search-attribute', `${k.name}=${cliType[k.type]}`]);
}
