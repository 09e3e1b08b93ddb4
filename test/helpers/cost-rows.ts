/** Cost rows written straight to the store, as a FOCUS collection would: one hour of one resource. */
import type { CostUsageRow } from '../../activities/storage/clickhouse/rows.js';

/** An hour's usage row of `resource` in collection `ver` of `source` (start in epoch seconds). */
export function hourlyCostRow(o: {
  start: number;
  cost: number;
  resource: string;
  source: string;
  ver: number;
  seq: number;
}): CostUsageRow {
  return {
    charge_period_start: o.start,
    charge_period_end: o.start + 3600,
    billed_cost: o.cost,
    effective_cost: o.cost,
    resource_id: o.resource,
    resource_type: 'VirtualMachine',
    service_name: 'Compute',
    region_id: 'eu-1',
    sku_id: 'sku-1',
    consumed_quantity: 1,
    consumed_unit: 'Hours',
    tags: '{}',
    source: o.source,
    ver: o.ver,
    seq: o.seq,
  };
}
