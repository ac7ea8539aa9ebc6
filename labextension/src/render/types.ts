// The JSON shapes this module renders, by the names the views use. All come from the generated
// ../schema.generated.ts (jupyter_mv/schemas/*.schema.json): never write these shapes by hand.
import type * as S from '../schema.generated';

export type IVersion = S.Version;
export type IVersionDetails = S.VersionDetails;
export type IHistoryPage = S.HistoryPage;
export type IDiff = S.Diff;
export type IServerVersion = S.ServerVersion;
export type ITagReply = S.TagReply;
export type IRenameReply = S.RenameReply;
export type IErrorReply = S.ErrorReply;
export type IVariableHistory = S.VariableHistory;
export type IVariableInfo = IVersionDetails['variables'][number];
export type IStoredCell = IVersionDetails['cells'][number];
export type IOutput = IStoredCell['outputs'][number];
export type ICellDiff = IDiff['cells'][number];
export type IDictDiff = IDiff['params'];
export type IMetricsDiff = IDiff['metrics'];
export type IVarDiff = IDiff['variables'];
export type IChangedVariable = IVarDiff['changed'][number];
export type IDiffVariable = IVarDiff['added'][number];
export type IAnalysis = NonNullable<IChangedVariable['analysis']>;
