// Issue 12: failures carry their message and stack trace in an encoded payload, so the payload
// codec (lib/payload-codec.ts) encrypts them; Temporal and its Web UI without the codec see
// "Encoded failure". CommonJS on purpose: the Temporal SDK require()s this file by path (client,
// worker, replayer), and bundleWorkflowCode puts it into the workflow bundle too.
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
