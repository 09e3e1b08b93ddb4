'use strict';
/**
 * The failure converter used with payload encryption (see client/codec.ts): error messages and
 * stack traces go into an encoded payload, which the codec encrypts. Temporal takes it as a
 * module path: the worker requires it and bundles it into the workflow sandbox, so it is plain
 * CommonJS with no dependency but @temporalio/common.
 */
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
