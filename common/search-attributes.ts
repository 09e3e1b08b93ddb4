/** Typed search attributes shown and filtered in the Temporal UI. Registered by `optiinfra stack up`. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA = {
  deployment: defineSearchAttributeKey('OptiDeployment', SearchAttributeType.KEYWORD),
  modelVersion: defineSearchAttributeKey('OptiModelVersion', SearchAttributeType.KEYWORD_LIST),
  kind: defineSearchAttributeKey('OptiKind', SearchAttributeType.KEYWORD),
  decision: defineSearchAttributeKey('OptiDecision', SearchAttributeType.KEYWORD),
  quality: defineSearchAttributeKey('OptiQuality', SearchAttributeType.DOUBLE),
} as const;
