/** Workflow ids derive from business keys here and nowhere else (docs/contract.md). */
export const customerWorkflowId = (customerId: string) => `customer:${customerId}`;
export const requestWorkflowId = (requestId: string) => `request:${requestId}`;
export const disputeWorkflowId = (disputeId: string) => `dispute:${disputeId}`;
export const policyWorkflowId = (version: string) => `policy:${version}`;
export const transferWorkflowId = (transferId: string) => `transfer:${transferId}`;
export const systemCheckWorkflowId = (checkId: string) => `system-check:${checkId}`;
export const RETENTION_SCHEDULE_ID = 'recording-retention';
export const DATA_RETENTION_SCHEDULE_ID = 'data-retention';
export const restrictionLiftWorkflowId = (requestId: string) => `restriction-lift:${requestId}`;
export const accountEmailWorkflowId = (ref: string) => `account-email:${ref}`;
export const WORKFLOW_STARTS_SCHEDULE_ID = 'workflow-starts';
export const transferPackageWorkflowId = (transferId: string) => `transfer-package:${transferId}`;
