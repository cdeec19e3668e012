// The workflow bundle's entry: every workflow the worker runs, and nothing else.
export { systemCheck } from './system-check';
export { retentionSweep } from './retention-sweep';
export { dispute } from './dispute';
export { customerLifecycle } from './customer-lifecycle';
export { accessRequest } from './access-request';
export { policyChange } from './policy-change';
export { dataRetentionSweep } from './data-retention';
export { liftRestrictionWorkflow } from './lift-restriction';
export { businessTransfer } from './business-transfer';
export { transferPackage } from './transfer-package';
export { accountEmail } from './account-email';
export { reconcileWorkflowStarts } from './reconcile-starts';
