/**
 * The planner's public surface: pure planning of btrfs snapshot syncs.
 * Build a {@link PlanInput} from two stores, call {@link planSync} (or
 * {@link planWithMeasurement} with a size probe), print with {@link formatPlan}.
 */
export type { Diff, Volume } from './volume.js';
export type {
  DiffOffer,
  DiffProvider,
  PlanInput,
  PlanOptions,
  SizeEstimator,
  StoreKind,
  StoreView,
} from './plan-input.js';
export { canSendAnyDiff, edgeKey, storesDiffs } from './plan-input.js';
export type { CostContext, CostModel, EdgeCostInput } from './cost-model.js';
export { DEFAULT_COST_MODEL, chargedSize, costContext, edgeCost } from './cost-model.js';
export type { FamilyStats } from './estimate.js';
export {
  CHANGE_RATE_DAMPING,
  DEFAULT_FULL_SIZE,
  LONE_FAMILY,
  MIN_CHANGE_RATE,
  MIN_DIFF_SIZE,
  NEIGHBOUR_CHANGE_FRACTION,
  UNKNOWN_GEN_STEPS,
  estimateDiffSize,
  estimateFullSize,
  familyStats,
} from './estimate.js';
export type { Graph, GraphEdge, GraphNode } from './graph.js';
export { buildGraph } from './graph.js';
export type { SearchOptions, SearchResult } from './plan-search.js';
export { DETACHED, PRESENT, searchPlan } from './plan-search.js';
export type { Plan, PlanDeletes, PlanJSON, Transfer, VolumeJSON } from './plan.js';
export { formatPlan, planToJSON } from './plan.js';
export { planSync } from './plan-sync.js';
export type { MeasureFn, MeasureOptions, MeasureRequest } from './measure-loop.js';
export { planWithMeasurement } from './measure-loop.js';
export { formatBytes } from '../format.js';
export type { SyntheticOptions } from './synthetic.js';
export { syntheticInput } from './synthetic.js';
export type {
  KeepPolicy,
  KeepReason,
  KeepRule,
  KeptItem,
  RetentionDecision,
  RetentionItem,
} from './retention.js';
export { KEEP_RULES, applyKeepPolicy, formatKeepPolicy, parseKeepPolicy } from './retention.js';
export type { ChainRetentionInput, ChainRetentionPlan, Rebase } from './retention-plan.js';
export { planChainRetention } from './retention-plan.js';
